/* The key -> server oracle of the memcache tests: libmemcached itself.
 * Usage: memcache_oracle DISTRIBUTION HASH WEIGHTED SERVERS < keys
 *   DISTRIBUTION  ketama | modula
 *   HASH          default | md5 | crc | fnv1_64 | fnv1a_64 | fnv1_32 | fnv1a_32
 *   WEIGHTED      0 | 1 (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, set before HASH)
 *   SERVERS       host:port:weight,... (memcached_servers_parse syntax)
 * Prints "host:port" of the server libmemcached picks for each key line. */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <string.h>

static memcached_hash_t hash_named(const char *name) {
  if (!strcmp(name, "md5")) return MEMCACHED_HASH_MD5;
  if (!strcmp(name, "crc")) return MEMCACHED_HASH_CRC;
  if (!strcmp(name, "fnv1_64")) return MEMCACHED_HASH_FNV1_64;
  if (!strcmp(name, "fnv1a_64")) return MEMCACHED_HASH_FNV1A_64;
  if (!strcmp(name, "fnv1_32")) return MEMCACHED_HASH_FNV1_32;
  if (!strcmp(name, "fnv1a_32")) return MEMCACHED_HASH_FNV1A_32;
  return MEMCACHED_HASH_DEFAULT;
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  memcached_st *memc = memcached_create(NULL);
  if (!strcmp(argv[1], "ketama")) memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA, 1);
  if (!strcmp(argv[3], "1")) memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
  if (strcmp(argv[2], "default")) memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_HASH, hash_named(argv[2]));
  memcached_server_st *pool = memcached_servers_parse(argv[4]);
  memcached_server_push(memc, pool);
  char line[1024];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    uint32_t idx = memcached_generate_hash(memc, line, strlen(line));
    const memcached_instance_st *inst = memcached_server_instance_by_position(memc, idx);
    printf("%s:%u\n", memcached_server_name(inst), (unsigned) memcached_server_port(inst));
  }
  return 0;
}
