// A callback-style (non-async) function, as Lambda's Node runtime still supports.
exports.handler = function (event, context, callback) {
  setTimeout(() => callback(null, { statusCode: 200, body: JSON.stringify({ requestId: typeof context.awsRequestId, remaining: context.getRemainingTimeInMillis() > 0 }) }), 5)
}
