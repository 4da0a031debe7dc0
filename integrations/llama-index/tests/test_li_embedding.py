"""MemvaultEmbedding: memvault's offline MiniLM as a LlamaIndex embedding (no network), usable by the vector store."""

from __future__ import annotations

import numpy as np
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.embeddings.memvault import MemvaultEmbedding
from llama_index.vector_stores.memvault import MemvaultVectorStore


def test_offline_minilm_is_semantic() -> None:
    embed = MemvaultEmbedding()
    cat, kitten, market = (np.array(v) for v in embed.get_text_embedding_batch(
        ["a small cat sleeping", "a kitten taking a nap", "the stock market fell today"]))
    assert len(cat) == 384 and embed.model_name == embed.model_id
    assert cat @ kitten > cat @ market + 0.2
    query = np.array(embed.get_query_embedding("sleepy cat"))
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-3


def test_index_with_memvault_embedding(make_li_memory) -> None:  # type: ignore[no-untyped-def]
    embed = MemvaultEmbedding("hash")
    store = MemvaultVectorStore(memory=make_li_memory(embedder="hash"), embed_model=embed)
    index = VectorStoreIndex.from_documents(
        [Document(text="invoices are due in 30 days"), Document(text="the office cat is called Miso")],
        storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed,
    )
    hit = index.as_retriever(similarity_top_k=1).retrieve("what is the cat called")[0]
    assert "Miso" in hit.node.get_content()
