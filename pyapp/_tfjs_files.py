"""TF.js files on the public CDN, with Subresource Integrity: written by pyapp_build/jslibs.py, do not edit.

The same bytes as the copy the asset build vendors into web/vendor/tfjs/ (tests/test_build.py checks it).
"""

TFJS_VERSION = "4.22.0"
#: File name (as in vendor/tfjs/) -> (jsDelivr npm URL, SRI).
FILES: dict[str, tuple[str, str]] = {
    "tf.min.js": (
        "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@4.22.0/dist/tf.min.js",
        "sha384-vE8hbVJ4lezako5rlvE7bY0BVzWlFhZncPlckrqNwcUQpVtgbENTgZ8TBbnPjZre",
    ),
    "tf-backend-wasm.min.js": (
        "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs-backend-wasm@4.22.0/dist/tf-backend-wasm.min.js",
        "sha384-8zJmraBl5B7v26aoZux6x4HhlWKyW2wD1RVC4LUkQxHS99ATPEvmsTL6D44t0Acv",
    ),
    "tf-backend-webgpu.min.js": (
        "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs-backend-webgpu@4.22.0/dist/tf-backend-webgpu.min.js",
        "sha384-0cz8Hmjyhn7MyeyzI7MSTOuEdxiSNiwpDDPakM6XjdtC/Fb5/qRxkmLrTJROQqjQ",
    ),
    "tfjs-backend-wasm.wasm": (
        "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs-backend-wasm@4.22.0/dist/tfjs-backend-wasm.wasm",
        "sha384-ZwWxXkngOvkV9/jOFE8ZwnuJTftuqBs9dPATM9/5t0SK6UNhYkhiCmKe98UmiVMj",
    ),
    "tfjs-backend-wasm-simd.wasm": (
        "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs-backend-wasm@4.22.0/dist/tfjs-backend-wasm-simd.wasm",
        "sha384-K3GxiUF8sNsf8m8ZYuEKWXFARCxCn0erZqbTdbYOpxeDRf0k+CWFF5gZ3xbW4cez",
    ),
    "tfjs-backend-wasm-threaded-simd.wasm": (
        "https://cdn.jsdelivr.net/npm/@tensorflow/tfjs-backend-wasm@4.22.0/dist/tfjs-backend-wasm-threaded-simd.wasm",
        "sha384-EuJw7PP3AQ4wqZVHrEgsG4/kh0NOitIk4QYoE+NEXyq03nKu/1qfVy0MSCwvvzMK",
    ),
}
