/**
 * Validators generated from the JSON Schemas at build time (scripts/compile-schemas.js), so a
 * start does not spend a fifth of a second compiling the schemas with ajv. Running from the
 * TypeScript sources (the tests), there are none, and the schemas are compiled as before: both
 * are made by ajv from the same schema with the same options (test/schema-prebuilt.test.ts).
 */
import type { ValidateFunction } from 'ajv'

/** The generated validator at `file` (absolute), or undefined when there is none. */
export function prebuiltValidator(file: string): ValidateFunction | undefined {
  try {
    return require(file) as ValidateFunction
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && (err as Error).message.includes(file)) return undefined
    throw err
  }
}

/** The options both validators are made with, so they answer alike. */
export const CONFIG_AJV_OPTIONS = { allErrors: true, verbose: true, useDefaults: true, allowUnionTypes: true } as const
export const RULES_AJV_OPTIONS = { allErrors: true, verbose: true, useDefaults: true, discriminator: true, allowUnionTypes: true } as const
