"""A fused, inference-only decoder step over the trained keras-hub layers' weights.

keras-hub's cached `TransformerDecoder` (`Seq2SeqTransformer.decode_step`) is the
reference: it is what training builds and what the tests compare against. One
question at a time, its step costs ~2 ms on a 2-core CPU although the arithmetic
is a fraction of that: rank-3 `EinsumDense` projections, a cache re-stacked
([B, 2, T, H, Dh]) at every step, masks rebuilt per layer and variables read in
the loop make ~430 non-constant ops in the loop body (this step: ~220). This
module computes the same step with the same weights, laid out for one token at a time:

    token [B] -> embedding + position [B, D]
    per layer: LayerNorm -> fused q|k|v matmul [B, 3D] -> write k, v at `index` of
               heads-first caches [B, H, T, Dh] -> attention -> output matmul -> residual
               LayerNorm -> query matmul -> attention over the encoder's keys/values,
               computed once per request [B, H, S, Dh] -> output matmul -> residual
               LayerNorm -> feed-forward (the layer's activation) -> residual
    -> final LayerNorm -> logits [B, V] through the tied embedding laid out [D, V]

The kernels are copied, re-laid out, into variables when the decoder is built
(`refresh()` copies them again after more training); norms and embeddings are
read from the model. Tests check that its logits equal keras-hub's step and
that replies are the same tokens for every strategy.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from model.compat import decoder_layer_parts

NEG_INF = -1e9  # Logit of a masked position (here and in `model/generation.py`).


class FusedDecoder(tf.Module):
    """Cached decoding for a `Seq2SeqTransformer` (any layer count, pre- or post-LN)."""

    def __init__(self, model, name: str = "fused_decoder"):
        super().__init__(name=name)
        self.model = model
        self.num_heads = model.num_heads
        self.head_dim = model.hidden_dim // model.num_heads
        self.normalize_first = model.normalize_first
        self.embedding_scale = float(model.hidden_dim) ** 0.5  # As `Seq2SeqTransformer.embed`.
        self.activations = [parts.feedforward_intermediate.activation for parts in self._parts()]
        with self.name_scope:
            self.layers = [_variables(values) for values in self._layer_values()]
            self.output_kernel = tf.Variable(model.output_kernel(), trainable=False, name="output_kernel")  # [D, V]

    def refresh(self):
        """Copy the model's current weights (after it trained further)."""
        for variables, values in zip(self.layers, self._layer_values()):
            for key, value in values.items():
                variables[key].assign(value)
        self.output_kernel.assign(self.model.output_kernel())

    def _parts(self):
        """The keras-hub decoder layers' sublayers (read through `model/compat.py`), first layer first."""
        return [decoder_layer_parts(layer) for layer in self.model.decoder_layers]

    def _layer_values(self) -> list[dict]:
        """Per decoder layer: its weights as 2-D kernels and 1-D biases (q|k|v fused)."""
        values = []
        for parts in self._parts():
            self_attention, cross_attention = parts.self_attention, parts.cross_attention
            query, key, value = (_kernel_and_bias(dense) for dense in (
                self_attention.query, self_attention.key, self_attention.value))
            cross_key, cross_value = (_kernel_and_bias(d) for d in (cross_attention.key, cross_attention.value))
            values.append({
                "qkv_kernel": tf.concat([query[0], key[0], value[0]], axis=1),  # [D, 3D]
                "qkv_bias": tf.concat([query[1], key[1], value[1]], axis=0),
                **_named("attention_output", _kernel_and_bias(self_attention.output, heads_first=True)),
                **_named("cross_query", _kernel_and_bias(cross_attention.query)),
                "cross_kv_kernel": tf.concat([cross_key[0], cross_value[0]], axis=1),  # [D, 2D]
                "cross_kv_bias": tf.concat([cross_key[1], cross_value[1]], axis=0),
                **_named("cross_output", _kernel_and_bias(cross_attention.output, heads_first=True)),
                **_named("intermediate", _kernel_and_bias(parts.feedforward_intermediate)),
                **_named("ffn_output", _kernel_and_bias(parts.feedforward_output)),
            })
        return values

    # -- decoding --------------------------------------------------------------
    def start(self, encoder_outputs, encoder_padding_mask, cache_length, beams: int = 1):
        """Per-request state and empty self-attention caches.

        encoder_outputs [B, S, D], padding mask [B, S] -> (`Request`, caches: per layer
        (k, v) [B, H, T, Dh], T = cache_length: [START] and the reply). Every weight is read here, once, so the
        decoding loop reads no variable; the encoder's keys/values are computed here
        and repeated for `beams` (keras-hub's `BeamSampler` repeats only the caches).
        """
        encoder_outputs = tf.cast(encoder_outputs, self.output_kernel.dtype)  # Mixed precision: float32 here.
        weights = [{key: tf.convert_to_tensor(v) for key, v in layer.items()} for layer in self.layers]
        cross = []
        for layer in weights:
            kv = _dense(encoder_outputs, layer["cross_kv_kernel"], layer["cross_kv_bias"])  # [B, S, 2D]
            key, value = tf.split(kv, 2, axis=-1)
            cross.append((tf.repeat(self._heads(key), beams, axis=0), tf.repeat(self._heads(value), beams, axis=0)))
        model = self.model
        request = Request(
            weights=weights,
            norms=[[_norm_weights(n) for n in (parts.self_attention_norm, parts.cross_attention_norm,
                                               parts.feedforward_norm)] for parts in self._parts()],
            final_norm=_norm_weights(model.decoder_norm),
            cross=cross,
            cross_mask=tf.repeat(tf.cast(encoder_padding_mask, tf.bool), beams, axis=0)[:, None, None, :],  # [B, 1, 1, S]
            embeddings=tf.convert_to_tensor(model.token_embedding.embeddings),
            positions=tf.convert_to_tensor(model.decoder_position.position_embeddings),
            output_kernel=tf.convert_to_tensor(self.output_kernel),
        )
        batch = tf.shape(encoder_outputs)[0]
        zeros = tf.zeros([batch, self.num_heads, cache_length, self.head_dim], self.output_kernel.dtype)
        return request, tuple((zeros, zeros) for _ in self.layers)

    def step(self, token_ids, index, request: "Request", caches):
        """One token per row: ids [B] at position `index` -> (logits [B, V], updated caches)."""
        x = tf.gather(request.embeddings, token_ids) * self.embedding_scale + request.positions[index]  # [B, D]
        self_mask = (tf.range(tf.shape(caches[0][0])[2]) <= index)[None, None, None, :]  # [1, 1, 1, T]
        new_caches = []
        layers = zip(request.weights, request.norms, self.activations, request.cross, caches)
        for weights, norms, activation, (cross_key, cross_value), (key_cache, value_cache) in layers:
            def self_attention(h):
                nonlocal key_cache, value_cache
                query, key, value = tf.split(_dense(h, weights["qkv_kernel"], weights["qkv_bias"]), 3, axis=-1)
                key_cache = _write(key_cache, index, self._one_position_heads(key))
                value_cache = _write(value_cache, index, self._one_position_heads(value))
                attended = self._attend(self._one_position_heads(query), key_cache, value_cache, self_mask)
                return _dense(attended, weights["attention_output_kernel"], weights["attention_output_bias"])

            def cross_attention(h):
                query = self._one_position_heads(_dense(h, weights["cross_query_kernel"], weights["cross_query_bias"]))
                attended = self._attend(query, cross_key, cross_value, request.cross_mask)
                return _dense(attended, weights["cross_output_kernel"], weights["cross_output_bias"])

            def feedforward(h):
                h = activation(_dense(h, weights["intermediate_kernel"], weights["intermediate_bias"]))
                return _dense(h, weights["ffn_output_kernel"], weights["ffn_output_bias"])

            x = self._residual(x, self_attention, norms[0])
            x = self._residual(x, cross_attention, norms[1])
            x = self._residual(x, feedforward, norms[2])
            new_caches.append((key_cache, value_cache))
        return tf.matmul(_layer_norm(x, request.final_norm), request.output_kernel), tuple(new_caches)

    def _residual(self, x, block, norm):
        """Pre-LN: x + block(norm(x)); post-LN: norm(x + block(x))."""
        if self.normalize_first:
            return x + block(_layer_norm(x, norm))
        return _layer_norm(x + block(x), norm)

    def _heads(self, x):
        """[B, L, D] -> [B, H, L, Dh]."""
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, [batch, length, self.num_heads, self.head_dim])
        return tf.transpose(x, [0, 2, 1, 3])

    def _one_position_heads(self, x):
        """[B, D] -> [B, H, 1, Dh] (a reshape only: no transpose for one position)."""
        return tf.reshape(x, [-1, self.num_heads, 1, self.head_dim])

    def _attend(self, query, key, value, mask):
        """query [B, H, 1, Dh] over key/value [B, H, L, Dh] where mask [., 1, 1, L] -> [B, D]."""
        scores = tf.matmul(query * self.head_dim**-0.5, key, transpose_b=True)  # [B, H, 1, L]
        weights = tf.nn.softmax(tf.where(mask, scores, NEG_INF), axis=-1)
        weights = tf.where(mask, weights, 0.0)  # As keras.layers.Softmax: an all-masked row attends to nothing.
        return tf.reshape(tf.matmul(weights, value), [-1, self.num_heads * self.head_dim])


class Request(NamedTuple):
    """What one request's decoding loop reads: tensors computed once, outside the loop."""

    weights: list  # Per layer: {name: 2-D kernel or 1-D bias}.
    norms: list  # Per layer: [(gamma, beta, epsilon)] for self-attention, cross-attention, feed-forward.
    final_norm: tuple
    cross: list  # Per layer: encoder keys and values [B, H, S, Dh].
    cross_mask: tf.Tensor  # [B, 1, 1, S] bool.
    embeddings: tf.Tensor  # [V, D], the tied token embedding.
    positions: tf.Tensor  # [the model's sequence_length, D].
    output_kernel: tf.Tensor  # [D, V].


def _kernel_and_bias(dense, heads_first: bool = False):
    """A Dense or EinsumDense layer's kernel as [in, out] and its bias as [out].

    Attention projections keep heads in their kernels: q/k/v [D, H, Dh], the
    output projection [H, Dh, D] (`heads_first`); Dense kernels are [in, out].
    """
    kernel = tf.convert_to_tensor(dense.kernel)
    if heads_first:
        kernel = tf.reshape(kernel, [-1, kernel.shape[-1]])
    else:
        kernel = tf.reshape(kernel, [kernel.shape[0], -1])
    return kernel, tf.reshape(tf.convert_to_tensor(dense.bias), [-1])


def _named(prefix: str, kernel_and_bias) -> dict:
    return {f"{prefix}_kernel": kernel_and_bias[0], f"{prefix}_bias": kernel_and_bias[1]}


def _variables(values: dict) -> dict:
    return {key: tf.Variable(value, trainable=False, name=key) for key, value in values.items()}


def _dense(x, kernel, bias):
    """x [..., in] @ kernel [in, out] + bias; rank-2 inputs use a plain MatMul."""
    if x.shape.rank == 2:
        return tf.matmul(x, kernel) + bias
    return tf.einsum("bsi,io->bso", x, kernel) + bias


def _norm_weights(norm) -> tuple:
    """A `keras.layers.LayerNormalization`'s (gamma, beta, epsilon)."""
    return tf.convert_to_tensor(norm.gamma), tf.convert_to_tensor(norm.beta), norm.epsilon


def _layer_norm(x, norm_weights):
    """x [B, D] normalised over D as LayerNormalization does."""
    gamma, beta, epsilon = norm_weights
    centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    return centered * tf.math.rsqrt(variance + epsilon) * gamma + beta


def _write(cache, index, update):
    """cache [B, H, T, Dh] with update [B, H, 1, Dh] written at position `index`."""
    begin = tf.stack([0, 0, tf.cast(index, tf.int32), 0])
    return tf.raw_ops.TensorStridedSliceUpdate(
        input=cache, begin=begin, end=begin + tf.shape(update), strides=tf.ones([4], tf.int32), value=update)
