/*
 * json: the little JSON output snapkeep needs (--json): strings escaped so
 * any file name, even one with a newline or bytes that are not UTF-8, comes
 * out as valid JSON.
 */
#ifndef SNAPKEEP_JSON_H
#define SNAPKEEP_JSON_H

#include <stdio.h>

/* Write s as a JSON string; invalid UTF-8 bytes become U+FFFD. */
void json_string(FILE *f, const char *s);

#endif
