#include "guidroute.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* GUIDs are 36 characters in practice; longer ones are not routed (asked of every adapter),
 * which keeps a slot at 48 bytes. */
#define KEY_MAX 43

struct slot {
	uint32_t mask;
	char guid[KEY_MAX + 1]; /* lower case; "" when the slot is free */
};

struct guidroute {
	pthread_mutex_t mu;
	size_t mask; /* slots - 1 */
	struct slot *slots;
};

/* The table key: the GUID in lower case; false when it is empty or too long to be one. */
static bool fold(const char *guid, char out[KEY_MAX + 1])
{
	size_t n = guid ? strlen(guid) : 0;

	if (n == 0 || n > KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = (guid[i] >= 'A' && guid[i] <= 'Z') ? (char)(guid[i] - 'A' + 'a') : guid[i];
	out[n] = '\0';
	return true;
}

static size_t slot_of(const struct guidroute *g, const char *key)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & g->mask;
}

struct guidroute *guidroute_create(size_t slots)
{
	struct guidroute *g = calloc(1, sizeof(*g));
	size_t n = 16;

	if (!g)
		return NULL;
	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	g->slots = calloc(n, sizeof(*g->slots));
	if (!g->slots || pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g->slots);
		free(g);
		return NULL;
	}
	g->mask = n - 1;
	return g;
}

void guidroute_destroy(struct guidroute *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->mu);
	free(g->slots);
	free(g);
}

/* slot_locked: the slot of guid (folded into key), with g->mu held; NULL, and nothing held,
 * when there is no table or guid cannot be a key. */
static struct slot *slot_locked(struct guidroute *g, const char *guid, char key[KEY_MAX + 1])
{
	if (!g || !fold(guid, key))
		return NULL;
	pthread_mutex_lock(&g->mu);
	return &g->slots[slot_of(g, key)];
}

void guidroute_learn(struct guidroute *g, const char *guid, unsigned adapter)
{
	char key[KEY_MAX + 1];
	struct slot *s;

	if (adapter >= GUIDROUTE_MAX_ADAPTERS || !(s = slot_locked(g, guid, key)))
		return;
	if (strcmp(s->guid, key) != 0) {
		memcpy(s->guid, key, strlen(key) + 1);
		s->mask = 0;
	}
	s->mask |= 1u << adapter;
	pthread_mutex_unlock(&g->mu);
}

void guidroute_forget(struct guidroute *g, const char *guid, unsigned adapter)
{
	char key[KEY_MAX + 1];
	struct slot *s;

	if (adapter >= GUIDROUTE_MAX_ADAPTERS || !(s = slot_locked(g, guid, key)))
		return;
	if (strcmp(s->guid, key) == 0) {
		s->mask &= ~(1u << adapter);
		if (s->mask == 0)
			s->guid[0] = '\0';
	}
	pthread_mutex_unlock(&g->mu);
}

uint32_t guidroute_get(struct guidroute *g, const char *guid)
{
	char key[KEY_MAX + 1];
	uint32_t m = 0;
	struct slot *s;

	if (!(s = slot_locked(g, guid, key)))
		return 0;
	if (strcmp(s->guid, key) == 0)
		m = s->mask;
	pthread_mutex_unlock(&g->mu);
	return m;
}
