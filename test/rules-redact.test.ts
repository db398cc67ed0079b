/**
 * Redaction: secrets never leave in an alert — by field name, and by shape inside any text —
 * while ordinary text (English words, timestamps, ids that are not card numbers) stays readable.
 */
import t from 'tap'
import { alertFields } from '../rules/alert-fields'
import { isSecretField, REDACTED, redactFields, redactText, redactValue } from '../rules/redact'

t.test('fields named as secrets lose their whole value', async (t) => {
  for (const path of ['password', 'user.password', 'http.request.headers.authorization', 'req.headers.cookie',
    'res.headers.set-cookie', 'api_key', 'apiKey', 'config.secret', 'auth.refresh_token', 'x-api-key', 'client_secret', 'session_id']) {
    t.ok(isSecretField(path), path)
  }
  for (const path of ['user.name', 'user_agent.original', 'url.path', 'event.duration', 'http.response.status_code', 'tokenizer.name', 'message']) {
    t.notOk(isSecretField(path), path)
  }
  t.same(redactFields({ 'user.password': 'hunter2', 'http.request.headers.authorization': 'Bearer abc', 'user.name': 'ann' }),
    { 'user.password': REDACTED, 'http.request.headers.authorization': REDACTED, 'user.name': 'ann' })
})

t.test('Telegram bot tokens', async (t) => {
  const token = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq'
  t.equal(redactText(`sendMessage failed: https://api.telegram.org/bot${token}/sendMessage`),
    `sendMessage failed: https://api.telegram.org/bot${REDACTED}/sendMessage`)
  t.equal(redactText(`token ${token} rejected`), `token ${REDACTED} rejected`)
})

t.test('Authorization and Cookie headers, bearer and basic credentials, JWTs', async (t) => {
  t.equal(redactText('headers: Authorization: Bearer eyJhbGciOi.abc.def'), `headers: Authorization: ${REDACTED}`)
  t.equal(redactText('Cookie: sessionid=abc123; csrftoken=xyz'), `Cookie: ${REDACTED}`)
  t.equal(redactText('calling upstream with Bearer sk_live_51Habc123XYZ done'), `calling upstream with Bearer ${REDACTED} done`)
  t.equal(redactText('Basic dXNlcjpwYXNzd29yZA== sent'), `Basic ${REDACTED} sent`)
  t.equal(redactText('Basic authentication failed for ann'), 'Basic authentication failed for ann', 'words after Basic stay')
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'
  t.equal(redactText(`jwt=${jwt}`), `jwt=${REDACTED}`)
  t.equal(redactText(`invalid token ${jwt} for ann`), `invalid token ${REDACTED} for ann`)
})

t.test('password=, token=, api_key= in query strings, JSON and messages', async (t) => {
  t.equal(redactText('/login?user=ann&password=hunter2&next=/home'), `/login?user=ann&password=${REDACTED}&next=/home`)
  t.equal(redactText('/api?api_key=AKIA123&token=t0k&key=abc&sig=zz'), `/api?api_key=${REDACTED}&token=${REDACTED}&key=${REDACTED}&sig=${REDACTED}`)
  t.equal(redactText('login failed password=hunter2 user=ann'), `login failed password=${REDACTED} user=ann`)
  t.equal(redactText('{"user":"ann","password":"hunter2","access_token": "abc"}'), `{"user":"ann","password":${REDACTED},"access_token": ${REDACTED}}`)
  t.equal(redactText("kwargs {'password': 'hunter2', 'user': 'ann'}"), `kwargs {'password': ${REDACTED}, 'user': 'ann'}`)
  t.equal(redactText('duplicate key value violates unique constraint'), 'duplicate key value violates unique constraint')
})

t.test('passwords in URLs', async (t) => {
  t.equal(redactText('could not connect to postgres://app:s3cr3t@db.internal:5432/shop'), `could not connect to postgres://app:${REDACTED}@db.internal:5432/shop`)
  t.equal(redactText('redis://:pa55@cache:6379/0'), `redis://:${REDACTED}@cache:6379/0`, 'no user, only a password')
  t.equal(redactText('see https://example.com/a:b@c'), 'see https://example.com/a:b@c', 'a colon in the path is not a password')
})

t.test('card numbers: Luhn-valid 13-19 digits, grouped or not; other numbers stay', async (t) => {
  t.equal(redactText('paid with 4111 1111 1111 1111 ok'), `paid with ${REDACTED} ok`)
  t.equal(redactText('card=5500-0000-0000-0004;'), `card=${REDACTED};`)
  t.equal(redactText('amex 378282246310005'), `amex ${REDACTED}`)
  t.equal(redactText('order 4111111111111112'), 'order 4111111111111112', 'fails the Luhn check')
  t.equal(redactText('at 1704456000000 ms'), 'at 1704456000000 ms', 'an epoch in ms is not a card')
  t.equal(redactText('2024-01-05 12:00:00 request 42'), '2024-01-05 12:00:00 request 42')
  t.equal(redactValue('payment.card', 4111111111111111), REDACTED, 'a card logged as a JSON number')
  t.equal(redactValue('event.duration', 1704456000000123), 1704456000000123)
})

t.test('alert fields: the key fields of an entry, redacted and cut to length', async (t) => {
  const fields: Record<string, string | number> = {
    '@timestamp': '2024-01-05T12:00:00.000Z',
    'http.request.method': 'POST',
    'url.path': '/login',
    'url.query': 'user=ann&password=hunter2',
    'http.response.status_code': 401,
    'client.ip': '203.0.113.9',
    'user_agent.original': 'curl/8.0',
    'user.name': 'ann',
    'message': 'x'.repeat(2000),
    'user.password': 'hunter2',
    'some.other': 'not a key field',
  }
  const out = alertFields((path) => fields[path], { 'service.name': 'shop', 'host.name': 'web-1', 'log.file.path': '/var/log/shop.log' })
  t.same(Object.keys(out).sort(), ['@timestamp', 'client.ip', 'host.name', 'http.request.method', 'http.response.status_code',
    'log.file.path', 'message', 'service.name', 'url.path', 'url.query', 'user.name', 'user_agent.original'].sort())
  t.equal(out['url.query'], `user=ann&password=${REDACTED}`)
  t.equal((out['message'] as string).length, 500)
  t.equal(out['service.name'], 'shop', 'from the source when the entry has none')
})

t.test('alert fields: top three in-app stack frames with their line numbers', async (t) => {
  const stack = ['Error: boom', '    at a (/app/src/a.js:1:1)', '    at b (/app/node_modules/x/b.js:2:2)',
    '    at c (/app/src/c.js:3:3)', '    at d (/app/src/d.js:4:4)', '    at e (/app/src/e.js:5:5)'].join('\n')
  const out = alertFields((path) => ({ 'error.type': 'Error', 'error.message': 'boom', 'error.stack_trace': stack } as Record<string, string>)[path])
  t.same(out['error.stack_frames'], ['at a (/app/src/a.js:1:1)', 'at c (/app/src/c.js:3:3)', 'at d (/app/src/d.js:4:4)'])
})

t.test('text that cannot hold a secret is returned as it is, without the full pass', async (t) => {
  for (const text of ['/api/users/42', 'Mozilla/5.0 (X11; Linux x86_64)', 'request completed', '2025-11-21T04:40:00.123Z']) {
    t.equal(redactText(text), text, text)
  }
  // Each shape still found, however little of the text gives it away.
  t.equal(redactText('Bearer abcdef123456'), `Bearer ${REDACTED}`)
  t.equal(redactText('card 4111 1111 1111 1111'), `card ${REDACTED}`)
  t.equal(redactText('t eyJhbGciOi.eyJzdWIiOi.sig'), `t ${REDACTED}`)
  t.equal(redactText('token=abc'), `token=${REDACTED}`)
  t.equal(redactText('2025-11-21T04:40:00Z password: hunter2'), `2025-11-21T04:40:00Z password: ${REDACTED}`, 'a time at the start of a longer text does not exempt it')
})
