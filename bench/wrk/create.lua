-- Create a profile: a name, metadata and external_user_details, different every request.
-- With BENCH_ACKED set, the id of every acknowledged (2xx) create is written to that file at
-- the end (the kill -9 durability check).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local counter = 0
local FORMAT = '{"name":"Load %d-%d","metadata":{"plan":"free","source":"wrk","n":"%d"},' ..
  '"external_user_details":{"reference_id":"wrk-%d-%d-%d","country":"DE",' ..
  '"entity_type":"individual","account_status":"active"}}'
local run = os.time()

function init(args)
  seed()
  acked = {}
end

function request()
  counter = counter + 1
  local body = string.format(FORMAT, thread_id, counter, counter, run, thread_id, counter)
  return wrk.format("POST", "/v1/user_profiles", nil, body)
end

if os.getenv("BENCH_ACKED") then
  function response(status, headers, body)
    if status >= 200 and status < 300 then
      local id = body:match('"id":"(uprof_[^"]+)"')
      if id then acked[#acked + 1] = id end
    end
  end
end
