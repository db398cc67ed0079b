/**
 * Notifications built by hand the way the alert pipeline builds them (rules/model.ts), for the
 * notifier and formatting tests. `fields` carries dotted ECS paths, as AlertEvent.fields does.
 */
import type { FieldValue } from '../../agent/entry'
import type { AlertEvent, Notification } from '../../rules/model'

/** 2015-05-17 10:05:03 UTC, a moment inside the Apache corpus. */
export const AT = Date.UTC(2015, 4, 17, 10, 5, 3)

export const HTTP_FIELDS: Record<string, FieldValue> = {
  '@timestamp': new Date(AT).toISOString(),
  'http.request.method': 'POST',
  'url.path': '/checkout',
  'http.response.status_code': 500,
  'client.ip': '203.0.113.9',
  'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64)',
  'user.name': 'alice',
  'service.name': 'api',
  'service.environment': 'production',
  'host.name': 'web-1',
}

export interface NotificationOverrides extends Partial<Omit<Notification, 'event'>> {
  event?: Partial<AlertEvent>
}

export function notification(overrides: NotificationOverrides = {}): Notification {
  const { event: eventOverrides, ...rest } = overrides
  const id = rest.id ?? 'n-1'
  const ruleId = rest.ruleId ?? 'http.5xx'
  const severity = rest.severity ?? 'error'
  const state = rest.state ?? 'firing'
  const fingerprint = rest.fingerprint ?? 'fp-1'
  const event: AlertEvent = {
    id: `${id}-event`,
    ruleId,
    severity,
    state,
    fingerprint,
    groupKey: { 'service.name': 'api' },
    at: AT,
    count: 1,
    fields: { ...HTTP_FIELDS },
    summary: '12 matches in 5m (threshold 10)',
    ...eventOverrides,
  }
  return {
    id,
    route: 'default',
    ruleId,
    ruleName: 'HTTP 5xx',
    severity,
    state,
    fingerprint,
    event,
    more: 0,
    total: 1,
    firstAt: AT,
    lastAt: AT,
    labels: {},
    ...rest,
  }
}
