/*
 * farmem peer benchmark: random hash table over N MiB (native build, run under a cgroup memory cap
 * with swap on zram by bench/suites/peer.ts). Same shape as the AssemblyScript `hashtable`
 * workload: an open-addressing table of 16-byte slots filling N MiB, half of the slots inserted
 * with pseudo-random keys (linear probing), then as many lookups of random inserted keys.
 *
 * usage: hashtable <MiB> <seed>   prints "<checksum> <elapsed-ns>" on stdout
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { uint64_t key, value; } slot_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t k) {
  k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ull; k ^= k >> 33;
  return k;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: hashtable <MiB> <seed>\n"); return 2; }
  size_t mib = strtoull(argv[1], NULL, 10);
  uint64_t seed = strtoull(argv[2], NULL, 10);
  size_t slots = mib * 1024 * 1024 / sizeof(slot_t); /* a power of two for whole MiB */
  size_t mask = slots - 1;
  size_t keys = slots / 2;
  uint64_t t0 = now_ns();
  slot_t *table = calloc(slots, sizeof(slot_t));
  if (!table) { fprintf(stderr, "hashtable: out of memory\n"); return 1; }
  /* key i is mix(seed + i) | 1, so 0 marks an empty slot */
  for (size_t i = 0; i < keys; i++) {
    uint64_t k = mix(seed * 0x9E3779B97F4A7C15ull + i) | 1;
    size_t h = mix(k) & mask;
    while (table[h].key != 0 && table[h].key != k) h = (h + 1) & mask;
    table[h].key = k;
    table[h].value = i;
  }
  uint64_t sum = 0, x = seed + 7;
  for (size_t i = 0; i < keys; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    uint64_t k = mix(seed * 0x9E3779B97F4A7C15ull + (x % keys)) | 1;
    size_t h = mix(k) & mask;
    while (table[h].key != k) h = (h + 1) & mask;
    sum += table[h].value;
  }
  uint64_t t1 = now_ns();
  printf("%llu %llu\n", (unsigned long long)sum, (unsigned long long)(t1 - t0));
  free(table);
  return 0;
}
