/*
 * Unit tests: workers/chat/grounding.c — a question shaped into the search
 * worker's query: the words that name something kept, question and stop
 * words dropped, the kind asked for made the type filter.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../../workers/chat/chat.h"


static void
shaped(const char *question, const char *q, const char *type)
{
    chat_query_t  out;

    chat_query_shape(question, &out);
    assert_string_equal(out.q, q);
    if (type == NULL) {
        assert_null(out.type);
    } else {
        assert_non_null(out.type);
        assert_string_equal(out.type, type);
    }
}


static void
test_albums_by_an_artist(void **state)
{
    shaped("what albums by Iron Maiden are there?", "iron maiden", "album");
    shaped("What Albums by IRON MAIDEN?!", "iron maiden", "album");
    shaped("Which records did Miles Davis make", "miles davis", "album");
}


static void
test_each_kind_word_is_its_filter(void **state)
{
    shaped("songs by Queen", "queen", "track");
    shaped("tracks on Powerslave", "powerslave", "track");
    shaped("bands like Metallica", "like metallica", "artist");
    shaped("any posts about jazz?", "jazz", "post");
    shaped("the artist Björk", "björk", "artist");
}


static void
test_two_kinds_ask_for_no_filter(void **state)
{
    shaped("albums and songs of U2", "u2", NULL);
    /* the same kind twice is still that kind */
    shaped("album or record of U2", "u2", "album");
}


static void
test_no_kind_no_filter(void **state)
{
    shaped("Stairway to Heaven", "stairway heaven", NULL);
    shaped("tell me about Led Zeppelin", "led zeppelin", NULL);
    /* an apostrophe inside a word is not a break */
    shaped("what's on Guns N' Roses' Appetite", "guns n roses appetite", NULL);
}


static void
test_nothing_left_to_search(void **state)
{
    shaped("what are there?", "", NULL);
    shaped("albums?", "", "album");
    shaped("", "", NULL);
    shaped("   ?!  ", "", NULL);
}


static void
test_a_long_question_is_cut_at_a_word(void **state)
{
    char          question[4000];
    size_t        i;
    chat_query_t  out;

    for (i = 0; i + 6 < sizeof(question); i += 6) {
        memcpy(question + i, "metal ", 6);
    }
    question[i] = '\0';

    chat_query_shape(question, &out);
    assert_true(strlen(out.q) < sizeof(out.q));
    assert_true(strlen(out.q) > sizeof(out.q) - 8);
    assert_int_equal(out.q[strlen(out.q) - 1], 'l');
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_albums_by_an_artist),
        cmocka_unit_test(test_each_kind_word_is_its_filter),
        cmocka_unit_test(test_two_kinds_ask_for_no_filter),
        cmocka_unit_test(test_no_kind_no_filter),
        cmocka_unit_test(test_nothing_left_to_search),
        cmocka_unit_test(test_a_long_question_is_cut_at_a_word),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
