#!/usr/bin/env python3
"""dodeca serve through the official OpenAI Python client (pip install openai).

Usage: examples/openai_client.py [BASE_URL]   (default http://127.0.0.1:8080/v1)
Set DODECA_API_KEY when the server was started with server.api_key."""
import math
import os
import sys

from openai import OpenAI

base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1"
client = OpenAI(base_url=base_url, api_key=os.environ.get("DODECA_API_KEY", "unused"))

texts = ["The quick brown fox", "A fast auburn fox", "Quarterly earnings fell sharply"]
response = client.embeddings.create(model="dodeca-fused", input=texts)
vectors = [item.embedding for item in response.data]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


print(f"{len(vectors)} vectors of {len(vectors[0])} floats, {response.usage.total_tokens} tokens")
for i in range(1, len(texts)):
    print(f"cosine({texts[0]!r}, {texts[i]!r}) = {cosine(vectors[0], vectors[i]):.4f}")
