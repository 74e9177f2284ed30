"""What collection tells the layers above it when phrasings change: Django signals, sent explicitly by
collection's services (never from save() or model signals), received in evaluation/receivers.py.

Why signals: collection must not import evaluation (dependencies point core <- collection <- evaluation), yet
an approval has to queue scoring in the same transaction. Django's dispatcher is the well-kept, documented
way to let a lower layer announce something without knowing who listens; receivers run synchronously, in
the sender's transaction, and an exception in one rolls the sender back, exactly as a direct call would.
Every event, its arguments and its receivers are listed here and in evaluation/receivers.py, so "what does
approving do?" is answered in those two files.

Edits need no event: only pending or needs-edit phrasings can be edited, and they have no results.
"""

from django.dispatch import Signal

# A phrasing entered the approved set (its current revision is now scored everywhere).
# Sent inside the approval's transaction. Arguments: instruction, by (the reviewer).
phrasing_approved = Signal()

# A phrasing left the approved set (rejected or retired after approval): its results leave the figures.
# Sent inside the review's transaction. Arguments: instruction.
phrasing_withdrawn = Signal()

# An import finished and committed; imported phrasings may be approved already. Arguments: none besides the
# sender. Receivers return lines for the import's report (a list of str), or None.
phrasings_imported = Signal()
