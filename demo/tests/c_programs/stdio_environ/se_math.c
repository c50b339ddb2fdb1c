/* libm calls on values the compiler cannot fold. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void print_math(double x)
{
    printf("x = %.6f\n", x);
    printf("sin(x) = %.12f  cos(x) = %.12f\n", sin(x), cos(x));
    printf("sqrt(x) = %.12f  cbrt(x) = %.12f\n", sqrt(x), cbrt(x));
    printf("pow(x, 3.5) = %.6f  pow(2, x) = %.9f\n", pow(x, 3.5), pow(2.0, x));
    printf("exp(x) = %.9e  log(x) = %.12f  log10(x) = %.12f\n", exp(x), log(x), log10(x));
    printf("atan2(x, -1) = %.12f  hypot(x, 4) = %.12f\n", atan2(x, -1.0), hypot(x, 4.0));
    printf("floor %.1f ceil %.1f round %.1f fmod(x*10, 3) = %.6f\n",
           floor(x), ceil(x), round(x), fmod(x * 10, 3.0));
    float f = (float)x;
    printf("sinf %.6f sqrtf %.6f\n", (double)sinf(f), (double)sqrtf(f));
    printf("%%g %g  %%e %e  %%a %a  %%10.3f [%10.3f]\n", x * 1e10, x / 1e10, x, -x);
    double sum = 0;
    for (int i = 1; i <= 1000; i++)
        sum += 1.0 / ((double)i * i);
    printf("sum 1/i^2 = %.15f  sqrt(6 sum) = %.15f\n", sum, sqrt(6 * sum));
}
