"""The documented default chat template: ChatML, as most instruction-tuned
models use it, with the assistant's text and its end-of-turn marked by
``{% generation %}`` so that exactly those tokens are trained. Used for a base
model that brings no template of its own, and by the tiny offline model.
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
