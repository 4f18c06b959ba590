-- GET with a bearer token (BENCH_TOKEN); the path is wrk's URL argument.
dofile(os.getenv("BENCH_DIR") .. "/wrk-common.lua")
