-- Call-heavy workload for lazyrt's real-program tests and benchmarks:
-- naive doubly recursive Fibonacci, run through lua_main.c.
--
--     lua_main fib.lua [N] [REPEAT]
--
-- N defaults to 33 (fib(33) makes 11.4 million Lua calls, each of which is
-- a C call from luaV_execute into luaD_precall; natively about 0.3 s on the
-- CI machine), REPEAT to 1. Prints one line per repetition, "fib(N) = F",
-- so the output is the same natively, lazily and eagerly.
local n = tonumber(arg and arg[1]) or 33
local rep = tonumber(arg and arg[2]) or 1

local function fib(k)
  if k < 2 then return k end
  return fib(k - 1) + fib(k - 2)
end

for _ = 1, rep do
  io.write(string.format("fib(%d) = %d\n", n, fib(n)))
end
return 0
