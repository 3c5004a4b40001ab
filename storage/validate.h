/* Stateless validation of names and mesh objects (clusters, routes, listeners). */
#ifndef RP_VALIDATE_H
#define RP_VALIDATE_H

#include <stddef.h>

#include "raftplane/limits.h"

enum rp_kind {
	RP_KIND_KV = 0,
	RP_KIND_CLUSTERS,
	RP_KIND_ROUTES,
	RP_KIND_LISTENERS,
	RP_KIND_MEMBERS, /* only in change records, never written by users */
	RP_KIND__COUNT
};

/** Map "kv", "clusters", ... (not NUL-terminated, @len bytes) to a kind, or -1. */
int rp_kind_parse(const char *s, size_t len);

/** Name of @kind as used in URLs and change records. */
const char *rp_kind_name(int kind);

/** 1 when @s (@len bytes) matches [A-Za-z0-9._-]{1,128}. */
int rp_name_valid(const char *s, size_t len);

/* Names of other objects a mesh object refers to. */
struct rp_refs {
	unsigned n;
	struct {
		int kind;
		char name[RP_MAX_NAME + 1];
	} ref[RP_MAX_REFS];
};

/**
 * Validate a mesh object of @kind (clusters, routes or listeners) given as
 * JSON text, and produce its canonical form: defaults filled in, keys sorted,
 * compact. @name is the object's name from the URL; a "name" field in the
 * body must equal it, a "version" field is ignored.
 *
 * On success returns RP_OK, sets *canon to a malloc'd NUL-terminated string
 * the caller frees, *canon_len to its length, and fills @refs (may be NULL).
 * On failure returns RP_ERR_INVALID, writes a one-line reason to @errmsg and
 * leaves *canon NULL.
 */
int rp_mesh_validate(int kind, const char *name, const char *json, size_t len,
		     char **canon, size_t *canon_len, struct rp_refs *refs,
		     char *errmsg, size_t errlen);

#endif
