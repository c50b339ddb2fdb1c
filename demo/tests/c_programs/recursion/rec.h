/* Recursion split across rec_a.c, rec_b.c and rec_c.c. */
int is_even(unsigned n);                 /* rec_a.c -> is_odd */
int is_odd(unsigned n);                  /* rec_b.c -> is_even */
int mod3_a(unsigned n);                  /* rec_a.c -> mod3_b -> mod3_c -> mod3_a */
int mod3_b(unsigned n);                  /* rec_b.c */
int mod3_c(unsigned n);                  /* rec_c.c */
long ackermann(long m, long n);          /* rec_c.c, calls ack_step */
long ack_step(long m, long n);           /* rec_a.c, calls ackermann */
long fib(int n);                         /* rec_b.c: fib(n-1) here, fib(n-2) via fib_c */
long fib_c(int n);                       /* rec_c.c */
long deep_a(long n);                     /* rec_a.c -> deep_b -> deep_c -> deep_a */
long deep_b(long n);
long deep_c(long n);
long hanoi(int n, int from, int to, int via, long *checksum);   /* rec_c.c */
