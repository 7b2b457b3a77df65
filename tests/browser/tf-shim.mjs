// Lets NSFWJS's ES module build (`import * as tf from "@tensorflow/tfjs"`) run on the
// page's own TF.js instance, so the reference and pyapp share one engine and backend.
const tf = globalThis.tf;
export const { Tensor, browser, image, io, loadGraphModel, loadLayersModel, model, scalar, tidy, zeros } = tf;
export default tf;
