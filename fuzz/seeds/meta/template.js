export const meta = { name: `t`, description: "d\u00e9", whenToUse: 'w', foo: [1, 2.5, -3, true, null], foo: 0x1F }
