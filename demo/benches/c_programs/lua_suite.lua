-- A deterministic workout of the Lua 5.4 interpreter and its standard
-- libraries, for lazyrt's real-program test (demo/tests/run_real_programs.rs):
-- the test runs it natively, lazily and eagerly and compares stdout, stderr
-- and the exit status byte for byte.
--
--     lua_main lua_suite.lua [SCALE] [EXIT]
--
-- SCALE (default 1) multiplies the loop sizes. EXIT, if given, makes the
-- script end with os.exit(EXIT) (libc exit from inside the program) instead
-- of returning 7 from the chunk (main's return value).
--
-- Nothing here prints addresses, times or pairs() order of string keys
-- (string hashing is seeded from addresses and the time).

local scale = math.tointeger(tonumber(arg[1] or "1")) or 1
local exit_code = arg[2] and math.tointeger(tonumber(arg[2]))

local function section(name)
  io.write("== ", name, "\n")
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- Arithmetic: integers, floats, conversions, libm ---------------------------
section("arith")
do
  local acc = 0
  for i = 1, 1000 * scale do acc = (acc * 31 + i) % 2147483647 end
  print("lcg", acc)
  print(7 // 2, -7 // 2, 7 % -3, -7 % 3, 7.5 // 2, 2^10, 10 / 4)
  print(math.maxinteger, math.mininteger, math.maxinteger + 1 == math.mininteger)
  print(1 << 62, 0xff ~ 0x0f, ~0, 5 & 3, 5 | 3, 256 >> 4)
  print(string.format("%.14g %.14g %.14g", math.pi, math.sqrt(2), math.exp(1)))
  print(string.format("%.6f %.6f %.6f", math.sin(1), math.cos(1), math.tan(1)))
  print(string.format("%.10g %.10g %.10g", math.log(10), math.log(8, 2), math.log(100, 10)))
  print(string.format("%.10g %.10g", math.fmod(7.5, 2), math.fmod(-7, 3)))
  print(math.floor(-3.5), math.ceil(-3.5), math.abs(math.mininteger), math.ult(1, -1))
  print(math.tointeger(3.0), math.tointeger(3.5), math.type(1), math.type(1.0), math.type("1"))
  print(tonumber("0x10"), tonumber("  12  "), tonumber("1e3"), tonumber("z", 36), tonumber("zz"))
  print(string.format("%5.2f|%-5d|%05d|%x|%X|%o|%e|%g|%a", 3.14159, 42, 42, 255, 255, 8, 12345.678, 1e20, 1.0))
  print(3 == 3.0, math.huge, -math.huge, 0/0 ~= 0/0, 1e308 * 10)
  print(8 // 0.0, -8 // 0.0, pcall(function() return 1 // 0 end))
  math.randomseed(42, 7)
  local r = {}
  for i = 1, 5 do r[i] = math.random(1, 1000) end
  print("random", table.concat(r, " "), math.random(0) ~= nil)
end

-- Strings and patterns ------------------------------------------------------
section("strings")
do
  local s = "The quick brown fox jumps over the lazy dog"
  print(#s, s:upper(), s:lower():len(), s:reverse():sub(1, 9))
  print(s:find("fox"), s:find("o", 20, true), s:match("(%a+) dog"), s:find("^The"))
  print((s:gsub("%w+", function(w) return w:sub(1, 1):upper() .. w:sub(2) end)))
  print(s:gsub("o", "0", 2))
  local words = {}
  for w in s:gmatch("%a+") do words[#words + 1] = w end
  print(#words, table.concat(words, ","))
  print(("x"):rep(5, "-"), ("ab"):rep(3), ("abc"):byte(1, -1))
  print(string.char(72, 105), ("%d items"):format(3), ("[%s]"):format(nil))
  print(("key = value"):match("^(%w+)%s*=%s*(%w+)$"))
  print(("  trim me  "):match("^%s*(.-)%s*$") .. "|")
  print(("2024-01-15"):match("(%d+)-(%d+)-(%d+)"))
  print(("f(a(b)c)d"):match("%b()"), ("THE (quick) fox"):find("%f[%a]%a+%f[%A]"))
  print(("hello world"):gsub("(%w+) (%w+)", "%2 %1"))
  print(("abc"):gsub("", "-"))
  print(string.format("%q", 'a "quoted"\n\0string'))
  print(string.format("%-10s|%10s|%.3s", "left", "right", "truncate"))
  print(tostring(12), tostring(1.5), tostring(-0.0), tostring(1e100), 2^53)
  local parts = {}
  for i = 1, 200 * scale do parts[#parts + 1] = string.format("%03d", i % 1000) end
  local big = table.concat(parts, ";")
  print(#big, big:sub(1, 23), select(2, big:gsub(";", ";")))
  -- string.pack / unpack
  local packed = string.pack("<i4 >i2 z s1 d", -2, 513, "zs", "str", 0.5)
  print(#packed, string.unpack("<i4 >i2 z s1 d", packed))
  print(string.packsize("i4 i8 d"), ("<I2"):pack(0x4142))
  -- utf8
  local u = utf8.char(72, 228, 8364, 128512)
  print(#u, utf8.len(u), utf8.codepoint(u, 1, -1))
  for p, c in utf8.codes("aé€") do io.write(p, ":", c, " ") end
  print(utf8.offset(u, 3), utf8.charpattern)
end

-- Tables --------------------------------------------------------------------
section("tables")
do
  local t = {}
  for i = 1, 500 * scale do t[i] = (i * 7919) % 1009 end
  table.sort(t)
  print(#t, t[1], t[2], t[#t], t[#t // 2])
  table.sort(t, function(a, b) return a > b end)
  print(t[1], t[#t])
  local people = {
    { name = "ana", age = 31 }, { name = "bo", age = 25 },
    { name = "cy", age = 31 }, { name = "di", age = 19 },
  }
  table.sort(people, function(a, b)
    if a.age ~= b.age then return a.age < b.age end
    return a.name < b.name
  end)
  for _, p in ipairs(people) do io.write(p.name, "=", p.age, " ") end
  print()
  local q = { 1, 2, 3 }
  table.insert(q, 4); table.insert(q, 1, 0); print(table.remove(q), table.remove(q, 1), table.concat(q, ","))
  print(table.unpack({ 1, 2, 3 }, 2), select("#", table.unpack({}, 1, 3)))
  print(table.concat(table.move({ 1, 2, 3, 4, 5 }, 2, 4, 1), ","))
  local packed = table.pack(1, nil, 3)
  print(packed.n, packed[1], packed[2], packed[3])
  local dict = { zeta = 1, alpha = 2, mid = 3, [10] = "ten", [true] = "yes" }
  for _, k in ipairs(sorted_keys(dict)) do io.write(tostring(k), "->", tostring(dict[k]), " ") end
  print()
  print(#{ 1, 2, 3, nil }, next({}), rawequal(t, t), rawlen({ 1, 2 }), rawget(dict, "mid"))
end

-- Closures, varargs, recursion, goto ---------------------------------------
section("functions")
do
  local function counter()
    local n = 0
    return function() n = n + 1; return n end
  end
  local c1, c2 = counter(), counter()
  c1(); c1()
  print(c1(), c2())
  local function va(...)
    return select("#", ...), select(2, ...), ...
  end
  print(va(1, nil, 3))
  local function ack(m, n)
    if m == 0 then return n + 1 end
    if n == 0 then return ack(m - 1, 1) end
    return ack(m - 1, ack(m, n - 1))
  end
  print("ack", ack(2, 3), ack(3, 3))
  local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
  print("fib", fib(18 + math.min(scale, 5)))
  local function tail(n, acc) if n == 0 then return acc end return tail(n - 1, acc + 1) end
  print("tail", tail(100000, 0))
  local i, out = 1, {}
  ::top::
  if i <= 5 then
    out[#out + 1] = i * i
    i = i + 1
    goto top
  end
  print(table.concat(out, " "))
  local fns = {}
  for k = 1, 3 do fns[k] = function() return k * 10 end end
  print(fns[1](), fns[2](), fns[3]())
end

-- Metatables and OOP ---------------------------------------------------------
section("metatables")
do
  local V = {}
  V.__index = V
  function V.new(x, y) return setmetatable({ x = x, y = y }, V) end
  function V.__add(a, b) return V.new(a.x + b.x, a.y + b.y) end
  function V.__eq(a, b) return a.x == b.x and a.y == b.y end
  function V.__lt(a, b) return a:len2() < b:len2() end
  function V.__le(a, b) return a:len2() <= b:len2() end
  function V.__tostring(v) return "(" .. v.x .. "," .. v.y .. ")" end
  function V.__len(v) return 2 end
  function V.__call(v, k) return v.x * k end
  function V.__concat(a, b) return tostring(a) .. tostring(b) end
  function V.__unm(v) return V.new(-v.x, -v.y) end
  function V:len2() return self.x * self.x + self.y * self.y end
  local a, b = V.new(1, 2), V.new(3, 4)
  print(tostring(a + b), a == V.new(1, 2), a < b, b <= a, #a, a(10), a .. b, tostring(-a))
  local defaults = setmetatable({}, { __index = function(_, k) return k .. "?" end })
  print(defaults.foo, rawget(defaults, "foo"))
  local log = {}
  local proxy = setmetatable({}, { __newindex = function(t, k, v) log[#log + 1] = k; rawset(t, k, v) end })
  proxy.a = 1; proxy.b = 2; proxy.a = 3
  print(table.concat(log, ","), proxy.a)
  local Animal = {}
  Animal.__index = Animal
  function Animal.new(name) return setmetatable({ name = name }, Animal) end
  function Animal:speak() return self.name .. " makes a sound" end
  local Dog = setmetatable({}, { __index = Animal })
  Dog.__index = Dog
  function Dog.new(name) return setmetatable(Animal.new(name), Dog) end
  function Dog:speak() return self.name .. " barks; " .. Animal.speak(self) end
  print(Dog.new("rex"):speak())
  print(getmetatable("abc").__index == string, ("x"):rep(3))
  local closed = {}
  do
    local res <close> = setmetatable({}, { __close = function() closed[#closed + 1] = "closed" end })
    local k <const> = 5
    closed[#closed + 1] = "body" .. k
  end
  print(table.concat(closed, ","))
end

-- Errors: pcall, error objects, xpcall with traceback (longjmp) -----------
section("errors")
do
  print(pcall(error, "plain"))
  local eok, eobj = pcall(error, { code = 42 })
  print(eok, type(eobj), eobj.code)
  print(select(2, pcall(error, setmetatable({}, { __tostring = function() return "custom" end }))) ~= nil)
  local ok, err = pcall(function() local x = nil; return x.field end)
  print(ok, err)
  ok, err = pcall(function() return 1 + {} end)
  print(ok, err)
  ok, err = pcall(function() error("with level", 2) end)
  print(ok, err)
  print(xpcall(function() error("deep") end, function(m) return "handled: " .. m end))
  local depth = 0
  local function nest(n)
    if n == 0 then error("bottom") end
    local ok2, e = pcall(nest, n - 1)
    depth = depth + 1
    error(e, 0)
  end
  print(pcall(nest, 50), depth)
  -- An error unwinding 10,000 Lua frames, then one unwinding 150 nested C
  -- calls (each __index call recurses through luaV_finishget/luaD_call).
  local function deep(n) if n == 0 then error("deep bottom", 0) end return 1 + deep(n - 1) end
  print(pcall(deep, 10000))
  local chain = setmetatable({}, { __index = function(t, k)
    if k == 0 then error("C-level bottom", 0) end
    return t[k - 1]
  end })
  print(pcall(function() return chain[150] end))
  print((select(2, pcall(function() return chain[1000] end)):gsub("^.-:%d+: ", "")))
  print(pcall(string.rep))
  print(pcall(string.format, "%d", 1.5))
  print(select("#", assert(1, 2, 3)), pcall(assert, false, "assert msg"))
  print(pcall(setmetatable, 1, {}))
  local t = setmetatable({}, { __index = function() error("index error") end })
  print(pcall(function() return t.x end))
end

-- Coroutines (their own C stacks are not used in 5.4, but resume/yield
-- go through luaD_rawrunprotected, i.e. setjmp) ---------------------------
section("coroutines")
do
  local function gen(n)
    return coroutine.wrap(function()
      for i = 1, n do coroutine.yield(i, i * i) end
      return "done"
    end)
  end
  local g = gen(4)
  for _ = 1, 5 do io.write(table.concat({ g() }, "/"), " ") end
  print()
  local co = coroutine.create(function(a, b)
    local c = coroutine.yield(a + b)
    local d, e = coroutine.yield(c * 2)
    return d + e
  end)
  print(coroutine.resume(co, 1, 2))
  print(coroutine.resume(co, 10))
  print(coroutine.resume(co, 3, 4))
  print(coroutine.resume(co), coroutine.status(co))
  local bad = coroutine.create(function() error("inside coroutine") end)
  print(coroutine.resume(bad))
  print(coroutine.isyieldable(), coroutine.running() ~= nil)
  -- yield across pcall
  local co2 = coroutine.wrap(function()
    local ok, v = pcall(function() local x = coroutine.yield("from pcall"); error("after " .. x) end)
    return ok, v
  end)
  print(co2())
  print(co2("resume"))
  -- producer / consumer
  local prod = coroutine.create(function()
    for i = 1, 100 * scale do coroutine.yield(i) end
  end)
  local sum = 0
  while true do
    local _, v = coroutine.resume(prod)
    if v == nil then break end
    sum = sum + v
  end
  print("sum", sum, coroutine.status(prod))
  local cl = coroutine.create(function() coroutine.yield() end)
  coroutine.resume(cl)
  print(coroutine.close(cl), coroutine.status(cl))
end

-- load, string.dump (parser, code generator, undump) ----------------------
section("load")
do
  local f = assert(load("local a, b = ... return a * b + 1"))
  print(f(6, 7))
  local env = { x = 5 }
  local g = load("return x * 2", "chunk", "t", env)
  print(g())
  print(load("syntax error here"))
  print(type(load(function() return nil end)), load(function() return nil end)())
  local pieces, idx = { "return ", "1 + ", "2" }, 0
  print(load(function() idx = idx + 1; return pieces[idx] end)())
  local function sq(x) return x * x end
  local dumped = string.dump(sq)
  local sq2 = load(dumped, "dumped", "b")
  print(sq2(12), #dumped > 0, (load(dumped, "dumped", "t")))
  local src = {}
  local nlocals = math.min(50 * scale, 190) -- Lua allows 200 locals
  for i = 1, nlocals do src[#src + 1] = string.format("local v%d = %d", i, i) end
  src[#src + 1] = "return v1 + v" .. nlocals
  print(load(table.concat(src, "\n"))())
end

-- Garbage collector, finalizers, weak tables --------------------------------
section("gc")
do
  local finalized = {}
  for i = 1, 5 do
    setmetatable({}, { __gc = function() finalized[#finalized + 1] = i end })
  end
  collectgarbage("collect")
  collectgarbage("collect")
  table.sort(finalized)
  print("finalized", table.concat(finalized, ","))
  local weak = setmetatable({}, { __mode = "k" })
  do
    local key = {}
    weak[key] = "v"
  end
  weak[1] = "strong"
  collectgarbage("collect")
  local n = 0
  for _ in pairs(weak) do n = n + 1 end
  print("weak entries", n)
  local junk = {}
  for i = 1, 20000 * scale do junk[i % 1000 + 1] = { i, tostring(i), { i } } end
  print("junk", #junk, junk[1][1], collectgarbage("step", 0) ~= nil)
  print(collectgarbage("incremental"), collectgarbage("generational"), collectgarbage("incremental"))
  print(type(collectgarbage("count")), collectgarbage("isrunning"))
end

-- Standard I/O, os ---------------------------------------------------------
section("io")
do
  io.write("io.write ", 1, " ", 2.5, "\n")
  io.stdout:write("stdout:write\n")
  io.stderr:write("this line goes to stderr\n")
  print(io.type(io.stdout), io.type(42), os.getenv("LAZYRT_SURELY_UNSET_VARIABLE"))
  local name = os.tmpname()
  local fh = assert(io.open(name, "w"))
  fh:write("line one\n", "line two\n", 3, "\n", 4.5, "\n")
  fh:close()
  local lines = {}
  for l in io.lines(name) do lines[#lines + 1] = l end
  print(#lines, table.concat(lines, "|"))
  fh = assert(io.open(name, "r"))
  print(fh:read("l"), fh:read("n"), fh:read("n"), fh:read("a"))
  print(fh:seek("set", 5), fh:read(3), fh:seek("end"))
  fh:close()
  print(pcall(fh.read, fh))
  print(os.remove(name), io.open(name) == nil, select("#", io.open("/nonexistent/dir/file")))
  print(os.time({ year = 2000, month = 1, day = 1, hour = 12 }) - os.time({ year = 2000, month = 1, day = 1, hour = 0 }))
  print(os.date("!%Y-%m-%d %H:%M:%S", 86400 * 365), type(os.clock()))
end

print("end of suite")
io.stdout:flush()
io.stderr:write("lua_suite: finishing\n")
if exit_code then os.exit(exit_code) end
return 7
