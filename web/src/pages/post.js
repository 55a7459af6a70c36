import { h } from '../lib/dom.js';

export default {
  path: '/posts/:id',
  title: 'post',
  async render(main) {
    main.append(h('h1', null, 'post'));
  },
};
