/*
 * farmem peer benchmark: sequential scan over N MiB (native build, run under a cgroup memory cap
 * with swap on zram by bench/suites/peer.ts). The same work as the AssemblyScript `seqscan` workload:
 * fill a buffer of N MiB with a pseudo-random pattern, then sum it PASSES times in order, the
 * second pass also rewriting every word (w = w * M + i, as the workload's pass 2), so both programs
 * dirty every page twice and read it four times.
 *
 * usage: seqscan <MiB> <seed> [passes]   prints "<checksum> <elapsed-ns>" on stdout
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: seqscan <MiB> <seed> [passes]\n"); return 2; }
  size_t mib = strtoull(argv[1], NULL, 10);
  uint64_t seed = strtoull(argv[2], NULL, 10);
  int passes = argc > 3 ? atoi(argv[3]) : 4;
  size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
  uint64_t t0 = now_ns();
  uint64_t *buf = malloc(n * sizeof(uint64_t));
  if (!buf) { fprintf(stderr, "seqscan: out of memory\n"); return 1; }
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; buf[i] = x; }
  uint64_t sum = 0;
  for (int p = 0; p < passes; p++) {
    if (p == 1) {
      for (size_t i = 0; i < n; i++) { sum += buf[i] ^ (uint64_t)p; buf[i] = buf[i] * 0x9E3779B97F4A7C15ull + i; }
    } else {
      for (size_t i = 0; i < n; i++) sum += buf[i] ^ (uint64_t)p;
    }
  }
  uint64_t t1 = now_ns();
  printf("%llu %llu\n", (unsigned long long)sum, (unsigned long long)(t1 - t0));
  free(buf);
  return 0;
}
