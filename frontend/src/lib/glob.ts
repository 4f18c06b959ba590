// airlock globs: `*` matches any run of characters including `/`, `?` one character, `[...]` a class.
export function globToRegExp(pattern: string, caseInsensitive = false): RegExp {
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '*') re += '.*'
    else if (c === '?') re += '.'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) {
        re += '\\['
        continue
      }
      let body = pattern.slice(i + 1, end)
      if (body.startsWith('!')) body = '^' + body.slice(1)
      re += '[' + body.replace(/\\/g, '\\\\') + ']'
      i = end
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&')
  }
  return new RegExp(re + '$', caseInsensitive ? 'i' : '')
}

export function globMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  try {
    return globToRegExp(pattern, caseInsensitive).test(value)
  } catch {
    return pattern === value
  }
}

export function anyGlob(patterns: readonly string[] | null | undefined, value: string, ci = false): boolean {
  return !!patterns && patterns.some((p) => globMatch(p, value, ci))
}
