/* argv, envp, environ, getenv, stdout and stderr (libc data symbols),
 * printf of doubles, libm (linked with -lm). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;
void print_math(double x);     /* se_math.c */

static const char *find(char **env, const char *name)
{
    size_t n = strlen(name);
    for (; *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return "(missing)";
}

int main(int argc, char **argv, char **envp)
{
    printf("argc = %d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d] = \"%s\"\n", i, argv[i]);
    printf("argv[argc] is %s\n", argv[argc] ? "not NULL?!" : "NULL");

    const char *value = getenv("LAZYRT_TEST_VAR");
    printf("getenv(LAZYRT_TEST_VAR) = %s\n", value ? value : "(null)");
    printf("environ has LAZYRT_TEST_VAR = %s\n", find(environ, "LAZYRT_TEST_VAR"));
    printf("envp has LAZYRT_TEST_VAR = %s\n", find(envp, "LAZYRT_TEST_VAR"));
    printf("getenv(LAZYRT_UNSET_VAR) = %s\n", getenv("LAZYRT_UNSET_VAR") ? "set?!" : "(null)");
    setenv("LAZYRT_NEW_VAR", "new value", 1);
    printf("after setenv: %s, via environ: %s\n", getenv("LAZYRT_NEW_VAR"),
           find(environ, "LAZYRT_NEW_VAR"));

    fprintf(stderr, "this goes to stderr (%d args)\n", argc - 1);
    fputs("fputs to stderr\n", stderr);
    errno = ENOENT;
    perror("perror");

    double x = argc > 4 ? strtod(argv[4], 0) : 1.0;
    print_math(x);

    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s|%5d|%-6s|%08.3f", argc > 1 ? argv[1] : "", 42, "ab", 3.14159);
    printf("snprintf: %d [%s]\n", n, buf);
    long parsed = argc > 3 ? strtol(argv[3], 0, 10) : 0;
    printf("strtol: %ld\n", parsed);

    /* stdio buffering against a raw write: flush first, so the order holds. */
    printf("before write ");
    fflush(stdout);
    if (write(1, "[raw write]\n", 12) != 12)
        return 2;
    fputc('!', stdout);
    putchar('\n');
    fprintf(stdout, "%s\n", "last line via fprintf(stdout), flushed by exit");
    return 17;
}
