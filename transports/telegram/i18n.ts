/**
 * The words of an alert message in the languages a route can choose (`language: en | ru | id`).
 * Only labels are translated: values from the log entry and the rule's own name and summary are
 * shown as written. Plurals follow each language's rules through Intl.PluralRules, so Russian
 * says "ещё 1 похожее" but "ещё 37 похожих".
 */
import type { Severity } from '../../rules/model'

export type Language = 'en' | 'ru' | 'id'
export const LANGUAGES: readonly Language[] = ['en', 'ru', 'id']

export interface Labels {
  severity: Record<Severity, string>
  resolved: string
  regression: string
  rule: string
  service: string
  host: string
  environment: string
  time: string
  count: string
  firstSeen: string
  lastSeen: string
  request: string
  clientIp: string
  userAgent: string
  user: string
  error: string
  fingerprint: string
  /** How often the exception was seen in total (its history, not this window). */
  seenTotal: (n: number) => string
  /** "and 37 more like this" */
  more: (n: number) => string
  openInKibana: string
  /** Shown instead of the rule's template when it fails to render. */
  templateFailed: string
}

type Plural = Partial<Record<Intl.LDMLPluralRule, string>> & { other: string }

function plural(language: Language, forms: Plural): (n: number) => string {
  const rules = new Intl.PluralRules(language)
  return (n) => (forms[rules.select(n)] ?? forms.other).replace('{n}', String(n))
}

const LABELS: Record<Language, Labels> = {
  en: {
    severity: { critical: 'CRITICAL', error: 'ERROR', warning: 'WARNING', info: 'INFO' },
    resolved: 'RESOLVED',
    regression: 'regression',
    rule: 'Rule',
    service: 'Service',
    host: 'Host',
    environment: 'Environment',
    time: 'Time',
    count: 'Count',
    firstSeen: 'First seen',
    lastSeen: 'Last seen',
    request: 'Request',
    clientIp: 'Client IP',
    userAgent: 'User agent',
    user: 'User',
    error: 'Error',
    fingerprint: 'Fingerprint',
    seenTotal: plural('en', { one: 'seen {n} time', other: 'seen {n} times' }),
    more: plural('en', { other: 'and {n} more like this' }),
    openInKibana: 'Open in Kibana',
    templateFailed: 'The rule\'s message template failed; the standard layout is shown',
  },
  ru: {
    severity: { critical: 'КРИТИЧНО', error: 'ОШИБКА', warning: 'ПРЕДУПРЕЖДЕНИЕ', info: 'ИНФО' },
    resolved: 'РЕШЕНО',
    regression: 'регрессия',
    rule: 'Правило',
    service: 'Сервис',
    host: 'Хост',
    environment: 'Окружение',
    time: 'Время',
    count: 'Количество',
    firstSeen: 'Впервые',
    lastSeen: 'Последний раз',
    request: 'Запрос',
    clientIp: 'IP клиента',
    userAgent: 'User agent',
    user: 'Пользователь',
    error: 'Ошибка',
    fingerprint: 'Отпечаток',
    seenTotal: plural('ru', { one: 'встречалась {n} раз', few: 'встречалась {n} раза', other: 'встречалась {n} раз' }),
    more: plural('ru', { one: 'и ещё {n} похожее', other: 'и ещё {n} похожих' }),
    openInKibana: 'Открыть в Kibana',
    templateFailed: 'Шаблон сообщения правила не сработал; показан стандартный вид',
  },
  id: {
    severity: { critical: 'KRITIS', error: 'GALAT', warning: 'PERINGATAN', info: 'INFO' },
    resolved: 'SELESAI',
    regression: 'regresi',
    rule: 'Aturan',
    service: 'Layanan',
    host: 'Host',
    environment: 'Lingkungan',
    time: 'Waktu',
    count: 'Jumlah',
    firstSeen: 'Pertama terlihat',
    lastSeen: 'Terakhir terlihat',
    request: 'Permintaan',
    clientIp: 'IP klien',
    userAgent: 'User agent',
    user: 'Pengguna',
    error: 'Galat',
    fingerprint: 'Sidik jari',
    seenTotal: plural('id', { other: 'terlihat {n} kali' }),
    more: plural('id', { other: 'dan {n} lainnya yang serupa' }),
    openInKibana: 'Buka di Kibana',
    templateFailed: 'Templat pesan aturan gagal; tata letak standar ditampilkan',
  },
}

export function labelsFor(language: Language): Labels {
  return LABELS[language]
}
