-- C-call-heavy workload: every iteration calls several C library functions
-- (math, string, select, rawlen...) through lua_CFunction pointers, and each
-- of those calls several lua_* API functions in another object file (lapi.o),
-- so cross-object C calls dominate, unlike fib.lua where the interpreter
-- loop does most of the work.
--
--     lua_main calls.lua [N]
--
-- N defaults to 1,000,000 (natively about 0.4 s on the CI machine).
local n = tonumber(arg and arg[1]) or 1000000
local max, abs, floor = math.max, math.abs, math.floor
local byte, sub, len = string.byte, string.sub, string.len
local select, rawlen, rawget, type = select, rawlen, rawget, type
local t, s, acc = { 1, 2, 3, 4 }, "abcdefgh", 0
for i = 1, n do
  acc = acc + max(i % 7, 3) + abs(-(i % 5)) + floor(i / 3)
  acc = acc + byte(s, i % 8 + 1) + len(sub(s, 2, 4))
  acc = acc + select("#", i, acc) + rawlen(t) + rawget(t, i % 4 + 1)
  if type(acc) ~= "number" then error("unreachable") end
  acc = acc % 1000000007
end
io.write(string.format("calls(%d) = %d\n", n, acc))
return 0
