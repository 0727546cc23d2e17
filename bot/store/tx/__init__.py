"""The SQL transaction by area: one mixin per module, combined into `bot.store.sql.SqlTx`.

core           driver primitives and shared helpers
texters        texters (hash look-up, alias)
conversations  conversations, timers, claim, quick-exit purge, notes
messages       messages and delivery statuses
outbox         outbound sends
accounts       users and the audit trail
alarms         staff alarms, once across processes
operations     webhook replies, retention, stats
programs       programs sharing one Haven, staff membership, per-program reads
abuse          the block list, per-number reply windows, the audit log by page
"""
