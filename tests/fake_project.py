"""A small labelled project for the fake backend: twelve reviews (the positive ones carry its
cue word "great") and three prompts. The gate's tests lock and check it, and the golden files
were written from it: an edit here changes them."""

from __future__ import annotations

DATA = [("a great film, truly great", "positive"), ("great acting and a great story", "positive"), ("simply great", "positive"),
        ("great fun from start to end", "positive"), ("the cast is great", "positive"), ("great, great, great", "positive"),
        ("dull and long", "negative"), ("a mess", "negative"), ("boring plot, wooden acting", "negative"),
        ("I left early", "negative"), ("not worth the ticket", "negative"), ("tedious", "negative")]

PROMPTS = '''name = "t"
description = "Sentiment."
[defaults]
chat = false

[[prompt]]
id = "yesno"
template = "Is this review positive? {{text}}"
answer_choices = { positive = ["yes"], negative = ["no"] }

[[prompt]]
id = "goodbad"
template = "{{text}} Was it good or bad?"
answer_choices = { positive = ["good"], negative = ["bad"] }

[[prompt]]
id = "plain"
template = "Review: {{text}} Sentiment:"
answer_choices = { positive = ["positive"], negative = ["negative"] }
'''
