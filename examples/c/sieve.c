/* sieve N: counts the primes below N with a byte-per-number sieve of Eratosthenes (N bytes of memory).
 * Build: clang --target=wasm32-wasi -O2 -o build/examples/sieve.wasm examples/c/sieve.c
 * Run:   npx farmem run build/examples/sieve.wasm --local 25% -- 67108864 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1u << 24;
  unsigned char *composite = calloc(n, 1);
  if (!composite) {
    fprintf(stderr, "sieve: cannot allocate %zu bytes\n", n);
    return 2;
  }
  size_t count = 0;
  for (size_t i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    if (i <= n / i)
      for (size_t j = i * i; j < n; j += i) composite[j] = 1;
  }
  printf("%zu primes below %zu\n", count, n);
  free(composite);
  return 0;
}
