-- Applies an outcome reported by the provider (callback or status query). The provider
-- is the authority, so this needs no lease; settling clears the lease, which fences out
-- any worker still in the middle of a call. Whoever settles also claims publishing.
-- A missing record is never created: a command with that key would adopt the outcome
-- and never be sent ('missing': a payment payfleet never sent, or one Redis lost, whose
-- command's own attempts settle it).
-- KEYS[1]: the record. ARGV: new state, outcome JSON, the open states it may be
-- settled from (space-separated, '' for any: an operator's resolution names them, so
-- that a payment a worker took since it was read is not settled under it), retention.
-- Returns {verdict, state before, meta JSON, published flag for the recorded state,
-- the command's traceparent, when it was last submitted (ms)}: the settler continues
-- the command's trace without asking again.
local rec = KEYS[1]
local to = ARGV[1]
local st = redis.call('HGET', rec, 'st')
if not st then
  return {'missing', '', '', 0, '', ''}
end
local ctx = redis.call('HMGET', rec, 'meta', 'tp', 'sent')
local meta, tp, sent = ctx[1] or '', ctx[2] or '', ctx[3] or ''
if is_terminal(st) or st == to then
  return {'duplicate', st, meta, published(rec, st), tp, sent}
end
if ARGV[3] and ARGV[3] ~= '' and not string.find(' ' .. ARGV[3] .. ' ', ' ' .. st .. ' ', 1, true) then
  return {'moved', st, meta, 0, tp, sent}
end
redis.call('HSET', rec, 'st', to, 'out', ARGV[2], 'upd', now)
if is_terminal(to) then
  redis.call('HDEL', rec, 'own', 'lease')
  claim_publish(rec, to)
end
return {'applied', st, meta, 0, tp, sent}
