"""The identity gate's numbers: how far apart the same person's photos and different people's
photos fall under the face embedding, and the threshold a deployment's own photos suggest."""
