// Node resolve hook (module.register): tfjs-core's ESM files (dist/register_all_gradients.js and what it imports)
// use extension-less specifiers such as './gradients' that plain Node ESM rejects; retry them as './x.js' or
// './x/index.js'. Only relative specifiers from files under node_modules/@tensorflow/ are touched.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const fromTfjs = context.parentURL && context.parentURL.includes('/node_modules/@tensorflow/');
    if (!fromTfjs || !specifier.startsWith('.') || specifier.endsWith('.js')) throw err;
    for (const alt of [`${specifier}.js`, `${specifier}/index.js`]) {
      try {
        const r = await next(alt, context);
        return { ...r, format: 'module' };
      } catch {
        // try the next form
      }
    }
    throw err;
  }
}
