-- Update a profile (POST): merge one metadata key into a random loaded profile. The value
-- changes every request, so every update is a real write (updated_at moves).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids
local counter = 0

function init(args)
  seed()
  ids = load_ids()
end

function request()
  counter = counter + 1
  local body = string.format('{"metadata":{"plan":"p%d-%d"}}', thread_id, counter)
  return wrk.format("POST", "/v1/user_profiles/" .. ids[math.random(#ids)], nil, body)
end
