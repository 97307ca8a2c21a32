export const meta = { name: 'a', description: 'b' }
return 1
