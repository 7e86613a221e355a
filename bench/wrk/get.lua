-- GET one profile: a random id of the loaded store per request.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids

function init(args)
  seed()
  ids = load_ids()
end

function request()
  return wrk.format("GET", "/v1/user_profiles/" .. ids[math.random(#ids)])
end
