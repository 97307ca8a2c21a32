export const meta = {
  name: 'x',
  description: foo,
}