// Let the worker's event loop turn after every test. Vitest sends task updates to the main process without
// waiting; their replies are read only when the loop turns. Files of synchronous tests (tokenizing, the data
// pipeline) would otherwise keep it busy for their whole run, and past 60 s under load the reply's timer fires
// first: 'Timeout calling "onTaskUpdate"', a failed run with every test passed.
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
