import { reactive } from 'vue'
import { errorMessage } from './api/client'

/** An unexpected failure anywhere in the app, shown as a banner instead of a blank page. */
export const appError = reactive({ message: '' })

export function reportError(e: unknown) {
  console.error(e)
  appError.message = 'Something went wrong: ' + errorMessage(e)
}
