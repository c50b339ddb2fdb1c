-- Compute-only timing for benches/object_linker.rs: naive doubly recursive
-- Fibonacci, run through lua_main.c.
--
--     lua_main fib_timed.lua [N] [REPEAT]
--
-- N defaults to 32, REPEAT to 1. Calls fib(10) once untimed (so the first
-- calls into the interpreter's call path, which a lazy link links, happen
-- before the clock starts), then computes fib(N) REPEAT times and prints one
-- line:
--
--     fib(N) = F x REPEAT cpu SECONDS
--
-- SECONDS is os.clock() (the process's CPU time) around the REPEAT
-- computations only: process start, loading, linking and the parser are
-- excluded. Everything before " cpu " is the same natively, lazily and
-- eagerly.
local n = tonumber(arg and arg[1]) or 32
local rep = tonumber(arg and arg[2]) or 1

local function fib(k)
  if k < 2 then return k end
  return fib(k - 1) + fib(k - 2)
end

assert(fib(10) == 55)
local value
local start = os.clock()
for _ = 1, rep do
  value = fib(n)
end
local seconds = os.clock() - start
io.write(string.format("fib(%d) = %d x %d cpu %.6f\n", n, value, rep, seconds))
return 0
