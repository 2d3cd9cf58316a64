"""Search terms: ASCII text takes a shorter road to the same terms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from nmail.mailstore.search_terms import MAX_TERM_CHARS, terms

ASCII = st.text(st.characters(max_codepoint=127), max_size=400)


@given(ASCII)
def test_ascii_text_gives_the_terms_of_the_general_road(text: str) -> None:
    # One Hangul syllable after a space makes the text non-ASCII (the general
    # road) and adds exactly itself as a term.
    assert terms(text, "zb") == terms(text + " 가", "zb")[:-1]


def test_ascii_terms_are_lowercased_words_cut_at_the_term_limit() -> None:
    long = "A" * (MAX_TERM_CHARS + 5)
    assert terms(f"Hello, kim@Example.COM_x 42 {long}") == [
        "hello", "kim", "example", "com", "x", "42", "a" * MAX_TERM_CHARS, "aaaaa"]
