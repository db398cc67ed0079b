import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { compileCondition } from '../rules/condition'
import { compileRegex, requiredLiterals } from '../rules/regex'

t.test('a catastrophic pattern runs in linear time on RE2', async (t) => {
  // With a backtracking engine, `(a+)+$` against 50 KB of "a" and one "!" would not finish in
  // the age of the universe; this test would time out instead of reaching the assertions.
  const compiled = compileRegex('(a+)+$')
  t.equal(compiled.problem, undefined)
  t.equal(compiled.regex?.engine, 're2')
  const input = 'a'.repeat(50 * 1024) + '!'
  t.equal(compiled.regex!.test(input), false)
  t.equal(compiled.regex!.test('a'.repeat(50 * 1024)), true)

  const nested = compileCondition({ field: 'url.path', regex: '^(\\w+\\s?)*$' }).condition!
  t.equal(nested.test({ sourceId: 's', offset: 0, end: 1, text: '', fields: { 'url.path': 'word '.repeat(10_000) + '!' } }), false)
})

t.test('what RE2 cannot do is refused at load, with the reason', async (t) => {
  t.same(compileRegex('(?<=/)admin').problem, 'lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported, because RE2 guarantees linear time')
  t.same(compileRegex('admin(?!/login)').problem, 'lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported, because RE2 guarantees linear time')
  t.same(compileRegex('(["\'])x\\1').problem, 'backreferences (\\1 ...) are not supported, because RE2 guarantees linear time')
  t.same(compileRegex('[a-').problem, 'missing ]: [a-')
  t.equal(compileRegex('(?<name>x)+').problem, undefined, 'named groups are fine')
})

t.test('plain text runs as includes / startsWith', async (t) => {
  t.equal(compileRegex('sqlmap').regex?.engine, 'literal')
  t.equal(compileRegex('^/health').regex?.engine, 'literal')
  t.equal(compileRegex('\\.\\./').regex?.engine, 'literal')
  t.equal(compileRegex('^/health$').regex?.engine, 're2', 'an end anchor needs the engine')
  t.equal(compileRegex('sqlmap', { ignoreCase: true }).regex?.engine, 're2')
  t.equal(compileRegex('^/health').regex!.test('/healthz'), true)
  t.equal(compileRegex('^/health').regex!.test('/api/health'), false)
  t.equal(compileRegex('\\.\\./').regex!.test('/a/../../etc/passwd'), true)
})

t.test('the literals every match must contain', async (t) => {
  t.same(requiredLiterals('sqlmap|nikto|nmap'), ['sqlmap', 'nikto', 'nmap'])
  t.same(requiredLiterals('union\\s+select'), ['select'])
  t.same(requiredLiterals('ab+c'), ['ab'])
  t.same(requiredLiterals('abc?d'), ['ab'])
  t.same(requiredLiterals('(foo|bar)baz'), ['baz'], 'a group is not required text')
  t.same(requiredLiterals('\\x41bc'), ['bc'], 'the digits of an escape are not text')
  t.same(requiredLiterals('ab{2,3}cd'), ['cd'], 'nor those of a counted quantifier')
  t.same(requiredLiterals('[|]abc|def'), ['abc', 'def'], 'a | in a class does not split')
  t.equal(requiredLiterals('a|'), undefined, 'an empty alternative needs nothing')
  t.equal(requiredLiterals('\\d+'), undefined)
  t.equal(requiredLiterals('(?i)abc'), undefined)
})

t.test('RE2 with its literal pre-check agrees with JavaScript on real traffic', async (t) => {
  const log = readFileSync(join(__dirname, '..', '..', 'shared', 'corpus', 'apache-combined-2015.log'), 'utf8')
  const lines = log.split('\n').filter((l) => l.length > 0)
  const samples = [...lines, 'SQLMAP/1.0', 'Nikto', 'ſqlmap', 'unIoN   SeLeCt', 'K-bot', 'café crawler']
  const patterns: Array<[string, boolean]> = [
    ['googlebot|bingbot|yandex', false],
    ['bot|crawler|spider', true],
    ['sqlmap|nikto', true],
    ['union\\s+select', true],
    ['\\.php(\\?|$)', false],
    ['GET /(images|presentations)/[a-z]+', false],
    ['Mozilla/5\\.0 \\(X11', false],
    ['\\.(css|js)\\b', false],
    ['"\\s+40[34]\\s', false],
    ['k-bot', true],
  ]
  for (const [pattern, ignoreCase] of patterns) {
    const ours = compileRegex(pattern, { ignoreCase }).regex!
    const js = new RegExp(pattern, ignoreCase ? 'iu' : 'u')
    let differ = 0
    let matched = 0
    for (const line of samples) {
      const expected = js.test(line)
      if (ours.test(line) !== expected) differ++
      if (expected) matched++
    }
    t.equal(differ, 0, `/${pattern}/${ignoreCase ? 'i' : ''}: same as JavaScript on ${samples.length} lines (${matched} match)`)
  }
})

t.test('the same pattern in many tests: each keeps its own flags and answers', async (t) => {
  // Tests of one pattern share its RE2 object; the case flag is part of what is shared.
  const pattern = 'un[i]on\\s+select'
  const exact = compileRegex(pattern).regex!
  const folded = compileRegex(pattern, { ignoreCase: true }).regex!
  const again = compileRegex(pattern).regex!
  t.equal(exact.engine, 're2')
  t.ok(exact.test('x union  select y'))
  t.notOk(exact.test('x UNION SELECT y'), 'without ignore_case, case matters')
  t.ok(folded.test('x UNION SELECT y'), 'with ignore_case, it does not')
  t.notOk(again.test('x UNION SELECT y'), 'the second exact test is still exact')
  // A test leaves nothing behind for the next one: the same text answers the same way twice.
  for (let i = 0; i < 3; i++) {
    t.ok(again.test('union select'))
    t.notOk(again.test('onion select'))
  }
})
