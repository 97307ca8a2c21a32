export const meta = {
 name: 'é', description: 'd', phases: [{ title: 'P', detail: 'x' }], args: { type: 'object' } };
run()