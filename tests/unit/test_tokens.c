/* Unit tests: API tokens and the audit trail in the state machine — token
 * commands and their rejections, the sticky tokens_enabled flag, audit rows
 * per revision, history filters and order, compaction, snapshots, and a
 * database from before these tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "helpers.h"
#include "raftplane/err.h"
#include "store.h"

static int token_cmd(struct rp_store *s, int type, const char *name, int role, unsigned char fill,
		     const char *actor, uint64_t time_ms, struct rp_apply_result *res)
{
	Raftplane__Command cmd;
	Raftplane__Token tok;
	unsigned char hash[RP_TOKEN_HASH_LEN];
	memset(hash, fill, sizeof hash);
	raftplane__command__init(&cmd);
	raftplane__token__init(&tok);
	cmd.type = type;
	tok.name = (char *)name;
	tok.role = (uint32_t)role;
	tok.hash.data = hash;
	tok.hash.len = sizeof hash;
	cmd.token = &tok;
	cmd.actor = (char *)actor;
	cmd.address = "10.0.0.1:5000";
	cmd.time_ms = time_ms;
	return apply_cmd(s, &cmd, res);
}

#define PUT_T RAFTPLANE__COMMAND__TYPE__TOKEN_PUT
#define DEL_T RAFTPLANE__COMMAND__TYPE__TOKEN_DELETE
#define BOOT_T RAFTPLANE__COMMAND__TYPE__TOKEN_BOOTSTRAP

static void test_token_commands(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	struct rp_token t;
	assert_int_equal(rp_store_tokens_enabled(s), 0);
	uint64_t gen = rp_store_tokens_gen(s);
	assert_int_equal(token_cmd(s, BOOT_T, "bootstrap", 3, 1, "system:x", 1000, &res), RP_OK);
	assert_int_equal(res.revision, 1);
	assert_int_equal(rp_store_tokens_enabled(s), 1);
	assert_true(rp_store_tokens_gen(s) != gen);
	/* a second bootstrap is refused, without a revision */
	assert_int_equal(token_cmd(s, BOOT_T, "other", 3, 2, "system:x", 1001, &res),
			 RP_ERR_CONFLICT);
	assert_int_equal(rp_store_revision(s), 1);
	/* create, duplicate name, duplicate secret, bad fields */
	assert_int_equal(token_cmd(s, PUT_T, "ci", 2, 3, "token:bootstrap", 2000, &res), RP_OK);
	assert_int_equal(token_cmd(s, PUT_T, "ci", 1, 4, "token:bootstrap", 2001, &res),
			 RP_ERR_CONFLICT);
	assert_int_equal(token_cmd(s, PUT_T, "ci2", 1, 3, "token:bootstrap", 2001, &res),
			 RP_ERR_CONFLICT);
	assert_int_equal(token_cmd(s, PUT_T, "bad name", 1, 5, "a", 1, &res), RP_ERR_INVALID);
	char longname[70];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_int_equal(token_cmd(s, PUT_T, longname, 1, 5, "a", 1, &res), RP_ERR_INVALID);
	longname[64] = '\0';
	assert_int_equal(token_cmd(s, PUT_T, longname, 1, 5, "a", 1, &res), RP_OK);
	assert_int_equal(token_cmd(s, PUT_T, "r0", 0, 6, "a", 1, &res), RP_ERR_INVALID);
	assert_int_equal(token_cmd(s, PUT_T, "r4", 4, 6, "a", 1, &res), RP_ERR_INVALID);
	assert_int_equal(rp_store_revision(s), 3);
	assert_int_equal(rp_store_token_get(s, "ci", &t), RP_OK);
	assert_int_equal(t.role, 2);
	assert_int_equal(t.created, 2000);
	assert_string_equal(t.created_by, "token:bootstrap");
	assert_int_equal(t.hash[0], 3);
	/* the last admin token stays */
	assert_int_equal(token_cmd(s, DEL_T, "bootstrap", 0, 0, "a", 1, &res), RP_ERR_CONFLICT);
	assert_int_equal(token_cmd(s, PUT_T, "admin2", 3, 7, "a", 1, &res), RP_OK);
	assert_int_equal(token_cmd(s, DEL_T, "bootstrap", 0, 0, "a", 1, &res), RP_OK);
	assert_int_equal(rp_store_token_get(s, "bootstrap", &t), RP_ERR_NOT_FOUND);
	assert_int_equal(token_cmd(s, DEL_T, "bootstrap", 0, 0, "a", 1, &res), RP_ERR_NOT_FOUND);
	/* revoking every token leaves the cluster with tokens enabled */
	assert_int_equal(token_cmd(s, DEL_T, "ci", 0, 0, "a", 1, &res), RP_OK);
	assert_int_equal(token_cmd(s, DEL_T, longname, 0, 0, "a", 1, &res), RP_OK);
	assert_int_equal(rp_store_tokens_enabled(s), 1);
	assert_int_equal(token_cmd(s, BOOT_T, "bootstrap", 3, 1, "system:x", 1, &res),
			 RP_ERR_CONFLICT);
	rp_store_destroy(s);
}

/* watches never see token changes */
static int count_change(void *arg, const struct rp_change *c)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static void test_tokens_not_in_watch(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	int n = 0;
	assert_int_equal(token_cmd(s, PUT_T, "ci", 2, 3, "x", 1, &res), RP_OK);
	assert_int_equal(put(s, "kv", "a", "1"), RP_OK);
	assert_int_equal(rp_store_changes(s, 0, ~0u, count_change, &n), RP_OK);
	assert_int_equal(n, 1);
	rp_store_destroy(s);
}

struct hist {
	uint64_t rev[64];
	char actor[64][64];
	size_t n, changes;
};

static int add_hist(void *arg, const struct rp_history_record *r)
{
	struct hist *h = arg;
	h->rev[h->n] = r->revision;
	snprintf(h->actor[h->n], sizeof h->actor[0], "%s", r->actor);
	h->n++;
	h->changes += r->n_changes;
	return 0;
}

static struct hist history(struct rp_store *s, struct rp_history_query q)
{
	struct hist h;
	memset(&h, 0, sizeof h);
	if (!q.limit)
		q.limit = 64;
	assert_int_equal(rp_store_history(s, &q, add_hist, &h), RP_OK);
	return h;
}

static void test_audit_history(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	/* rev 1: a command without audit fields (an internal proposal) */
	assert_int_equal(put(s, "kv", "old", "1"), RP_OK);
	/* revs 2..: with audit fields */
	for (int i = 0; i < 10; i++) {
		Raftplane__Command cmd;
		Raftplane__Op op, *ops[2] = {&op, NULL};
		Raftplane__Op op2;
		char name[16];
		raftplane__command__init(&cmd);
		snprintf(name, sizeof name, "k%d", i);
		rp_op_init(&op, 0, "kv", name, "v", 1);
		rp_op_init(&op2, 0, "kv", "shared", "v", 1);
		ops[1] = &op2;
		cmd.ops = ops;
		cmd.n_ops = 2;
		cmd.actor = i % 2 ? "token:bob" : "token:alice";
		cmd.address = "127.0.0.1:4000";
		cmd.time_ms = 1000 + (uint64_t)i;
		assert_int_equal(apply_cmd(s, &cmd, &res), RP_OK);
	}
	assert_int_equal(token_cmd(s, PUT_T, "ci", 2, 3, "token:alice", 5000, &res), RP_OK);
	assert_int_equal(rp_store_revision(s), 12);
	struct rp_history_query q = {.kind = -1};
	struct hist h = history(s, q);
	assert_int_equal(h.n, 12);
	assert_int_equal(h.rev[0], 12); /* newest first */
	assert_int_equal(h.rev[11], 1);
	assert_string_equal(h.actor[11], "");
	assert_int_equal(h.changes, 1 + 20 + 1);
	q.oldest_first = 1;
	h = history(s, q);
	assert_int_equal(h.rev[0], 1);
	assert_int_equal(h.rev[11], 12);
	/* filters */
	q = (struct rp_history_query){.kind = -1, .actor = "token:bob"};
	h = history(s, q);
	assert_int_equal(h.n, 5);
	for (size_t i = 0; i < h.n; i++)
		assert_string_equal(h.actor[i], "token:bob");
	q = (struct rp_history_query){.kind = -1, .actor = ""};
	h = history(s, q);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.rev[0], 1);
	q = (struct rp_history_query){.kind = RP_KIND_KV, .name = "k3"};
	h = history(s, q);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.rev[0], 5);
	assert_int_equal(h.changes, 2); /* the whole revision */
	q = (struct rp_history_query){.kind = RP_KIND_TOKENS};
	h = history(s, q);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.rev[0], 12);
	q = (struct rp_history_query){.kind = -1, .name = "shared"};
	h = history(s, q);
	assert_int_equal(h.n, 10);
	q = (struct rp_history_query){.kind = -1, .from_revision = 3, .to_revision = 6};
	h = history(s, q);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.rev[0], 6);
	assert_int_equal(h.rev[3], 3);
	q.limit = 2;
	h = history(s, q);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.rev[1], 5);
	rp_store_destroy(s);
}

/* More revisions than one batch of rp_store_history, in both orders. */
static int count_rec(void *arg, const struct rp_history_record *r)
{
	uint64_t *st = arg; /* [count, last revision, out of order] */
	if (st[0] && st[3] == 0 && r->revision >= st[1])
		st[2] = 1;
	if (st[0] && st[3] == 1 && r->revision <= st[1])
		st[2] = 1;
	st[0]++;
	st[1] = r->revision;
	return 0;
}

static void test_history_batches_and_compaction(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	for (int i = 0; i < RP_HISTORY_REVS + 150; i++)
		assert_int_equal(put(s, "kv", "k", "v"), RP_OK);
	uint64_t st[4] = {0, 0, 0, 0};
	struct rp_history_query q = {.kind = -1, .limit = 1000};
	assert_int_equal(rp_store_history(s, &q, count_rec, st), RP_OK);
	assert_int_equal(st[0], 1000);
	assert_int_equal(st[2], 0);
	memset(st, 0, sizeof st);
	st[3] = 1;
	q.oldest_first = 1;
	q.limit = 100000;
	assert_int_equal(rp_store_history(s, &q, count_rec, st), RP_OK);
	assert_int_equal(st[0], RP_HISTORY_REVS); /* compacted with the changes */
	assert_int_equal(st[2], 0);
	sqlite3 *db;
	void *buf;
	size_t len;
	sqlite3_stmt *stmt;
	assert_int_equal(rp_store_serialize(s, &buf, &len), RP_OK);
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_deserialize(db, "main", buf, (sqlite3_int64)len,
					     (sqlite3_int64)len, SQLITE_DESERIALIZE_FREEONCLOSE),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), min(rev) FROM audit", -1, &stmt,
					    NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), RP_HISTORY_REVS);
	assert_int_equal(sqlite3_column_int(stmt, 1), 151);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	rp_store_destroy(s);
}

static int count_token(void *arg, const struct rp_token *t)
{
	(void)t;
	(*(int *)arg)++;
	return 0;
}

static void test_snapshot_and_old_database(void **state)
{
	(void)state;
	struct rp_store *s = new_store(), *r = new_store();
	struct rp_apply_result res;
	void *buf;
	size_t len;
	int n = 0;
	assert_int_equal(token_cmd(s, PUT_T, "ci", 2, 3, "token:a", 7, &res), RP_OK);
	assert_int_equal(put(s, "kv", "a", "1"), RP_OK);
	assert_int_equal(rp_store_serialize(s, &buf, &len), RP_OK);
	uint64_t gen = rp_store_tokens_gen(r);
	assert_int_equal(rp_store_restore(r, buf, len), RP_OK);
	sqlite3_free(buf);
	assert_true(rp_store_tokens_gen(r) != gen);
	assert_int_equal(rp_store_tokens_enabled(r), 1);
	assert_int_equal(rp_store_tokens(r, count_token, &n), RP_OK);
	assert_int_equal(n, 1);
	struct hist h = history(r, (struct rp_history_query){.kind = -1});
	assert_int_equal(h.n, 2);
	assert_string_equal(h.actor[1], "token:a");
	rp_store_destroy(r);

	/* a database from before the tokens and audit tables */
	sqlite3 *db;
	assert_int_equal(rp_store_serialize(s, &buf, &len), RP_OK);
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_deserialize(db, "main", buf, (sqlite3_int64)len, (sqlite3_int64)len,
				    SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
		SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP TABLE tokens; DROP TABLE audit; "
				      "DELETE FROM meta WHERE key='tokens_enabled'; "
				      "DELETE FROM changes WHERE kind=5",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_int64 olen;
	unsigned char *old = sqlite3_serialize(db, "main", &olen, 0);
	assert_non_null(old);
	sqlite3_close(db);
	r = new_store();
	assert_int_equal(rp_store_restore(r, old, (size_t)olen), RP_OK);
	sqlite3_free(old);
	assert_int_equal(rp_store_tokens_enabled(r), 0);
	h = history(r, (struct rp_history_query){.kind = -1});
	assert_int_equal(h.n, 1); /* the kv revision, without its audit row */
	assert_string_equal(h.actor[0], "");
	assert_int_equal(token_cmd(r, BOOT_T, "bootstrap", 3, 9, "system:x", 8, &res), RP_OK);
	assert_int_equal(put(r, "kv", "b", "1"), RP_OK);
	h = history(r, (struct rp_history_query){.kind = -1});
	assert_int_equal(h.n, 3);
	rp_store_destroy(r);
	rp_store_destroy(s);
}

/* Old log entries (no audit fields) and new ones apply the same rows on
 * two stores. */
static void test_deterministic(void **state)
{
	(void)state;
	struct rp_store *a = new_store(), *b = new_store();
	struct rp_apply_result res;
	for (int i = 0; i < 2; i++) {
		struct rp_store *s = i ? b : a;
		assert_int_equal(token_cmd(s, BOOT_T, "bootstrap", 3, 1, "system:x", 5, &res),
				 RP_OK);
		assert_int_equal(put(s, "kv", "a", "1"), RP_OK);
		assert_int_equal(token_cmd(s, PUT_T, "ci", 1, 2, "token:bootstrap", 6, &res),
				 RP_OK);
		assert_int_equal(token_cmd(s, DEL_T, "ci", 0, 0, "token:bootstrap", 7, &res),
				 RP_OK);
	}
	struct hist ha = history(a, (struct rp_history_query){.kind = -1});
	struct hist hb = history(b, (struct rp_history_query){.kind = -1});
	assert_int_equal(ha.n, hb.n);
	assert_memory_equal(ha.rev, hb.rev, sizeof ha.rev);
	assert_memory_equal(ha.actor, hb.actor, sizeof ha.actor);
	rp_store_destroy(a);
	rp_store_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_commands),
		cmocka_unit_test(test_tokens_not_in_watch),
		cmocka_unit_test(test_audit_history),
		cmocka_unit_test(test_history_batches_and_compaction),
		cmocka_unit_test(test_snapshot_and_old_database),
		cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
