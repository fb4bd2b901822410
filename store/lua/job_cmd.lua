-- KEYS: cmd (mdm:cmd:<UUID>)
-- The command plist a bulk job queues, for the worker that resumes the job
-- (job_live.lua); '' when the command expired.
return redis.call('HGET', KEYS[1], 'plist') or ''
