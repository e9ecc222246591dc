-- Records an invalid command as rejected, unless its key already names another payment.
-- KEYS[1]: the record. ARGV: fingerprint, meta JSON, outcome JSON, retention ms.
-- Returns {verdict, state, published flag}.
local rec = KEYS[1]
local st = redis.call('HGET', rec, 'st')
if not st then
  redis.call('HSET', rec, 'st', 'rejected', 'fp', ARGV[1], 'meta', ARGV[2], 'out', ARGV[3],
    'fence', 0, 'att', 0, 'created', now, 'upd', now)
  claim_publish(rec, 'rejected')
  redis.call('PEXPIRE', rec, tonumber(ARGV[4]))
  return {'applied', 'rejected', 0}
end
if redis.call('HGET', rec, 'fp') ~= ARGV[1] then
  return {'conflict', st, 0}
end
return {'duplicate', st, published(rec, st)}
