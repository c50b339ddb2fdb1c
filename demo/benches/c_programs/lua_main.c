/*
 * A minimal stand-alone Lua driver (the `lua-src` crate ships the Lua
 * library sources but not lua.c).
 *
 *     lua_main SCRIPT [ARGS...]
 *
 * Runs SCRIPT with the standard libraries open. Like lua.c, the global
 * `arg` holds arg[-1] = argv[0], arg[0] = SCRIPT, arg[1..] = ARGS, and the
 * ARGS are also passed to the chunk as `...`. An uncaught error prints
 * "lua_main: MESSAGE" plus a traceback to stderr and exits with 1. If the
 * chunk returns an integer, that is the exit status (so a script can test
 * main's return path as well as `os.exit`, which calls libc's exit).
 *
 * Used by demo/tests/run_real_programs.rs and by the call-heavy benchmark
 * inputs fib.lua and calls.lua. Build (LUA = the lua-src crate's lua-5.4.9;
 * README.md has the commands): every .c file (this one and each of $LUA's)
 * to its own object with
 *     cc -c -O2 -ffunction-sections -fdata-sections -DLUA_COMPAT_5_3 \
 *        -DLUA_USE_LINUX -I$LUA
 * then link natively with `cc ... -lm`, or run with `lazyrt run -l m
 * lua_main.o LUA-OBJECTS... -- fib.lua` (lua_main.o first).
 */
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

static const char *progname = "lua_main";

/* Error handler for lua_pcall: appends a traceback to the message. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs in protected mode so that memory errors while setting up are caught. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int i, status, nargs = argc - 2;
  luaL_checkversion(L);
  luaL_openlibs(L);
  lua_createtable(L, nargs, 2);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, msghandler);
  if (luaL_loadfile(L, argv[1]) != LUA_OK) {
    lua_error(L); /* message already on the stack */
  }
  for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
  status = lua_pcall(L, nargs, 1, 3);
  if (status != LUA_OK) lua_error(L); /* message + traceback */
  return 1; /* the chunk's result */
}

int main(int argc, char **argv) {
  lua_State *L;
  int status, rc = 0;
  if (argv[0] && argv[0][0]) progname = argv[0];
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", progname);
    return 2;
  }
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return 1;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "lua_main: %s\n", msg ? msg : "(non-string error)");
    fflush(stderr);
    rc = 1;
  } else if (lua_isinteger(L, -1)) {
    rc = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return rc;
}
