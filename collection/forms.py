"""Forms for authoring and curation. They collect input; validation of phrasings lives in the services, so
the form, the API and admin refuse the same things with the same messages."""

from __future__ import annotations

from django import forms

from collection.models import Answers, Instruction, PhrasingTag, Task
from core.parsing import IdField, parse_id


class PhrasingForm(forms.Form):
    template = forms.CharField(
        label="Phrasing",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "true", "class": "template"}),
        help_text="Write the instruction and place the instance in it with placeholders in braces.",
        strip=False,
    )
    preview_model = forms.ChoiceField(label="Preview as", required=False)
    tags = forms.MultipleChoiceField(
        label="What it varies",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Optional: tick what your phrasing does differently. Models' pages compare accuracy on "
        "tagged phrasings with the rest.",
    )

    def __init__(self, *args, task: Task, models=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.task = task
        # The vocabulary is data (curators add tags in admin), so it is read per form, not at import.
        self.tag_vocabulary = list(PhrasingTag.objects.all())
        self.fields["tags"].choices = [(tag.slug, tag.name) for tag in self.tag_vocabulary]
        self.fields["preview_model"].choices = [("", "Plain text (no prompt format)")] + [
            (m.name, f"{m.name} ({m.get_prompt_format_display()})") for m in models
        ]
        self.models = {m.name: m for m in models}
        # Tasks answered with label words may give their own word for each label (yes/no for same/different).
        if task.answer_format == Task.AnswerFormat.OPTION_TEXT:
            for index, label in enumerate(task.label_space):
                self.fields[f"label_{index}"] = forms.CharField(
                    label=f"Word for “{label}”",
                    required=False,
                    max_length=100,
                    widget=forms.TextInput(attrs={"placeholder": label}),
                )

        # On a letter-answered task a phrasing may ask for the option itself instead of its letter
        # ("Which is larger? 3 or 5" answered "5"); the scorer then ranks the option texts.
        if task.answer_format == Task.AnswerFormat.LETTER:
            self.fields["answers"] = forms.ChoiceField(
                label="The model answers with",
                choices=[
                    (Answers.TASK, "the option's letter (A, B, …)"),
                    (Answers.TEXTS, "the option's text"),
                ],
                initial=Answers.TASK,
                required=False,
            )

    def answers(self) -> str | None:
        """What the phrasing declares it is answered with; None: as its label words say."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return data.get("answers") or None

    @property
    def answers_field(self):
        return self["answers"] if "answers" in self.fields else None

    def labels(self) -> list[str] | None:
        """The label words, or None when none were given (the task's own labels are used). A field left empty
        beside filled ones is its label's own word, which its placeholder shows."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        words = [data.get(f"label_{i}", "").strip() for i in range(len(self.task.label_space))]
        if self.task.answer_format != Task.AnswerFormat.OPTION_TEXT or not any(words):
            return None
        return [word or label for word, label in zip(words, self.task.label_space, strict=True)]

    def label_fields(self):
        return [self[name] for name in self.fields if name.startswith("label_")]

    def model(self):
        return self.models.get(self.cleaned_data.get("preview_model") or "")


class TagsForm(forms.Form):
    """A phrasing's tags alone (its page: the author or a curator, in any status)."""

    tags = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tag_vocabulary = list(PhrasingTag.objects.all())
        self.fields["tags"].choices = [(tag.slug, tag.name) for tag in self.tag_vocabulary]


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (Instruction.Status.APPROVED, "Approve"),
            (Instruction.Status.NEEDS_EDIT, "Ask for an edit"),
            (Instruction.Status.REJECTED, "Reject"),
        ]
    )
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class DecisionForm(ReviewForm):
    """One decision on one phrasing, naming the revision the curator read (a hidden field of the queue)."""

    revision = IdField()


def parse_ticked(values: list[str]) -> dict[int, int] | None:
    """The bulk form's ticked phrasings, each "<phrasing id>:<revision id>" (the revision the curator read);
    None when any value is malformed (ids parse strictly, so a "²" is refused, not crashed on)."""
    ticked = {}
    for value in values:
        pk, _, revision = value.partition(":")
        pk, revision = parse_id(pk), parse_id(revision)
        if pk is None or revision is None:
            return None
        ticked[pk] = revision
    return ticked


class UploadForm(forms.Form):
    file = forms.FileField(
        label="File of phrasings",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.jsonl"}),
        error_messages={"required": "Choose a .csv or .jsonl file.", "empty": "The file is empty."},
    )
