/* Bounded line reading with getc_unlocked. */
#include "line_reader.h"

#include <stdlib.h>

#include "error.h"

int rp_line_reader_init(struct rp_line_reader *r, FILE *f, char *errmsg)
{
	r->f = f;
	r->line_no = 0;
	r->cap = 4096;
	r->buf = malloc(r->cap);
	if (r->buf == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "line buffer");
	}
	return RP_CHK_OK;
}

void rp_line_reader_close(struct rp_line_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Doubles the buffer, never beyond RP_LINE_MAX + 1 bytes. */
static int grow(struct rp_line_reader *r)
{
	size_t cap = r->cap * 2 > RP_LINE_MAX + 1 ? RP_LINE_MAX + 1 : r->cap * 2;
	char *buf = realloc(r->buf, cap);

	if (buf == NULL) {
		return RP_CHK_ENOMEM;
	}
	r->buf = buf;
	r->cap = cap;
	return RP_CHK_OK;
}

/* Consumes the rest of an over-long line so the file position stays sane. */
static void skip_rest(FILE *f)
{
	int c;

	while ((c = getc_unlocked(f)) != EOF && c != '\n') {
	}
}

int rp_line_reader_next(struct rp_line_reader *r, const char **line, size_t *len, char *errmsg)
{
	size_t n = 0;
	int c;

	*line = NULL;
	*len = 0;
	while ((c = getc_unlocked(r->f)) != EOF && c != '\n') {
		if (n == RP_LINE_MAX) {
			skip_rest(r->f);
			return rp_chk_errorf(errmsg, RP_CHK_ELIMIT,
					     "line %zu: longer than %zu bytes", r->line_no + 1,
					     RP_LINE_MAX);
		}
		if (n + 1 == r->cap && grow(r) != RP_CHK_OK) {
			return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "line %zu: buffer",
					     r->line_no + 1);
		}
		if (c == '\0') {
			return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: NUL byte",
					     r->line_no + 1);
		}
		r->buf[n++] = (char)c;
	}
	if (ferror(r->f)) {
		return rp_chk_errorf(errmsg, RP_CHK_EIO, "line %zu: read failed", r->line_no + 1);
	}
	if (c == EOF && n == 0) {
		return RP_CHK_OK;
	}
	if (n > 0 && r->buf[n - 1] == '\r') {
		n--;
	}
	r->buf[n] = '\0';
	r->line_no++;
	*line = r->buf;
	*len = n;
	return RP_CHK_OK;
}
