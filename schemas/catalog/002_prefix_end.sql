-- prefix_end(p) was p || U+10FFFF, an exclusive upper bound for the sort
-- keys starting with p: it left out a key whose character after p is
-- U+10FFFF itself (?q=ab missed "abU+10FFFF...").  Sort keys are at most
-- 64 characters, so p followed by 64 of U+10FFFF is an inclusive bound
-- instead: under "C" collation every key starting with p is <= it, and
-- every other key above p is above it too.  artists_list compares <=.
CREATE OR REPLACE FUNCTION prefix_end(p text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN p || repeat(chr(1114111), 64);
