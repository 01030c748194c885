// Architect's packages ship no type declarations; kvarc uses the inventory object loosely.
declare module '@architect/inventory' {
  const inventory: (options: { cwd: string, env?: boolean, deployStage?: string }) => Promise<{ inv: any, get: any }>
  export default inventory
}
declare module '@architect/package' {
  const pkg: (options: { inventory: unknown, createFunctionSrc?: boolean }) => any
  export default pkg
}
