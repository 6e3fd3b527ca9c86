"""Which chat template renders a base model's conversations: the model's own,
else the documented default. The dataset validator (which counts tokens) and
the trainer (which trains them) both ask ``chat_template_of``, so a dataset
is measured exactly as it will be trained.

The default is ChatML, as most instruction-tuned models use it, with the
assistant's text and its end-of-turn marked by ``{% generation %}`` so that
exactly those tokens are trained. The tiny offline model uses it too.
"""

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def chat_template_of(tokenizer) -> str:
    """The template ``tokenizer``'s conversations are rendered with: its own
    (of several named ones, the one named ``default``), or DEFAULT_CHAT_TEMPLATE
    when it has none.

    Raises ValueError when the tokenizer names several templates and none of
    them ``default``: which one the model expects cannot be told.
    """
    if not tokenizer.chat_template:
        return DEFAULT_CHAT_TEMPLATE
    return tokenizer.get_chat_template()
