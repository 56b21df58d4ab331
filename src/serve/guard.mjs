// Preloaded (node --import) into every trainer process the server starts: when the server dies, even by SIGKILL,
// its IPC channel closes and the trainer stops at once, so a restarted server never finds two trainers writing one
// job dir. Everything the trainer wrote is atomic; the restarted server resumes the job from its last checkpoint.
if (process.send) {
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.channel?.unref(); // the channel alone must not keep a finished trainer alive
}
